/* test_ns.c — the ns backend against the real kernel and the real images (label ns; needs root,
 * overlayfs, cgroups, pasta and dockerd for the test images). One scenario per run:
 *   e2e        every call shape on agx-test-debian:12 and agx-test-busybox:1, over TCP (private
 *              network) and over the http+unix URL of network none; the bundle's bin on PATH
 *   isolation  host processes and files, another sandbox's files, the runtime's token, host
 *              loopback from none, a host-side server from the private network
 *   limits     memory (the task is OOM-killed and get() counts it), a fork bomb against pids, a
 *              limit the kernel cannot enforce (test seam) refused by name
 *   cycles     N create/delete cycles per network mode (AGX_NS_CYCLES, default 50 each), then
 *              zero mounts, cgroups, processes, pins and sandbox folders left
 *   crash      a host process SIGKILLed at many instants of create; the sweep leaves nothing
 *   expiry     the ownership record in get/list; a library host SIGKILLed and a CLI sandbox with
 *              no owner: both end themselves at their 3 s expiry, gc --dry-run names them, one
 *              gc leaves nothing
 * Every scenario uses its own AGENTIX_NS_ROOT, so they can run in parallel. */
#include <agentix/agentix.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentix/backend/labels.h"
#include "agentix/backend/runtime.h"
#include "agentix/clock.h"
#include "agentix/unix_url.h"
#include "check.h"
#include "ns_world.h"

static agx_deployment *dep;
static char bundle[512], root[64];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static agx_sandbox_config *config(const char *image, const char *net)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_image(cfg, image) == 0 &&
          agx_sandbox_config_set_bundle(cfg, bundle) == 0 && agx_sandbox_config_set_timeout_ms(cfg, 30000) == 0 &&
          agx_kv_set(agx_sandbox_config_options(cfg), "ns.network", net) == 0);
    return cfg;
}

/* bash::run in the sandbox; returns the result map (caller frees). */
static agx_value *run(agx_client *c, const char *command, agx_error *err)
{
    agx_value *kw = agx_value_map(), *res = NULL;
    CHECK(kw && agx_value_map_set(kw, "command", agx_value_string(command)) == 0);
    int rc = agx_client_call(c, "agentix.bash::run", NULL, kw, 60000, &res, err);
    agx_value_free(kw);
    CHECK_OK(rc, err);
    return res;
}

static const char *out_of(agx_value *res)
{
    return agx_value_get_string(agx_value_map_get(res, "stdout"), NULL);
}

static int64_t exit_of(agx_value *res)
{
    return agx_value_get_int64(agx_value_map_get(res, "exit_code"));
}

static void user_module_calls(agx_client *c, agx_error *err)
{
    agx_value *args = agx_value_array(), *result = NULL;
    CHECK(args && agx_value_array_push(args, agx_value_int(2)) == 0 &&
          agx_value_array_push(args, agx_value_int(3)) == 0);
    CHECK_OK(agx_client_call(c, "demo::add", args, NULL, 60000, &result, err), err);
    agx_value_free(args);
    CHECK(agx_value_get_int64(result) == 5);
    agx_value_free(result);
    agx_value *kw = agx_value_map(), *item;
    CHECK(kw && agx_value_map_set(kw, "n", agx_value_int(5)) == 0);
    agx_call *call = NULL;
    CHECK_OK(agx_client_stream(c, "demo::count", NULL, kw, &call, err), err);
    agx_value_free(kw);
    int64_t seen = 0;
    int rc;
    while ((rc = agx_call_next(call, 60000, &item, err)) == 1) {
        CHECK(agx_value_get_int64(agx_value_map_get(item, "i")) == seen);
        seen++;
        agx_value_free(item);
    }
    CHECK_OK(rc, err);
    agx_call_free(call);
    CHECK(seen == 5);
    CHECK_OK(agx_client_bidi(c, "demo::echo_bidi", NULL, NULL, &call, err), err);
    static const char *const words[] = {"one", "two", "three"};
    for (size_t i = 0; i < 3; i++) {
        agx_value *w = agx_value_string(words[i]);
        CHECK_OK(agx_call_send(call, w, 60000, err), err);
        agx_value_free(w);
    }
    CHECK_OK(agx_call_close_send(call, err), err);
    size_t echoed = 0;
    while ((rc = agx_call_next(call, 60000, &item, err)) == 1) {
        CHECK(echoed < 3);
        CHECK_STREQ(agx_value_get_string(item, NULL), words[echoed]);
        echoed++;
        agx_value_free(item);
    }
    CHECK_OK(rc, err);
    agx_call_free(call);
    CHECK(echoed == 3);
}

static long health_over_unix(const char *url)
{
    char path[256];
    CHECK(agx_unix_url_split(url, path, sizeof path, NULL) == 1); /* docs/PROTOCOL.md §1 */
    CURL *h = curl_easy_init();
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_URL, "http://localhost/health");
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, path);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    fclose(sink);
    return status;
}

static void e2e(void)
{
    static const char *const images[] = {"agx-test-debian:12", "agx-test-busybox:1"};
    agx_error err;
    for (size_t i = 0; i < 2; i++) {
        agx_sandbox_config *cfg = config(images[i], "private");
        agx_sandbox *sb;
        CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
        agx_client *c;
        CHECK_OK(agx_client_connect_sandbox(sb, NULL, &c, &err), &err);
        agx_value *res = run(c, "echo hi; command -v agentix-server; hostname; cat /etc/os-release", &err);
        CHECK(exit_of(res) == 0);
        CHECK_CONTAINS(out_of(res), "hi\n");
        CHECK_CONTAINS(out_of(res), "/opt/agentix/bin/agentix-server"); /* the bundle's bin on PATH */
        CHECK_CONTAINS(out_of(res), agx_sandbox_id(sb));                /* its own hostname */
        CHECK_CONTAINS(out_of(res), i == 0 ? "Debian" : "");
        agx_value_free(res);
        user_module_calls(c, &err);
        agx_client_free(c);
        CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
        agx_sandbox_free(sb);
        agx_sandbox_config_free(cfg);

        /* network none: the client dials the http+unix:// URL (docs/PROTOCOL.md §1) */
        cfg = config(images[i], "none");
        CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
        CHECK(health_over_unix(agx_sandbox_runtime_url(sb)) == 200);
        /* the host library's own requests reach the socket too (the generic POST /expiry) */
        CHECK_OK(agx_runtime_expiry_extend(sb, 60000, agx_clock_ms() + 20000, &err), &err);
        CHECK_OK(agx_client_connect_sandbox(sb, NULL, &c, &err), &err);
        res = run(c, "echo hi-unix; command -v agentix-server", &err);
        CHECK(exit_of(res) == 0);
        CHECK_CONTAINS(out_of(res), "hi-unix\n/opt/agentix/bin/agentix-server");
        agx_value_free(res);
        user_module_calls(c, &err);
        agx_client_free(c);
        CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
        CHECK(health_over_unix(agx_sandbox_runtime_url(sb)) == 0);
        CHECK(agx_runtime_expiry_extend(sb, 60000, agx_clock_ms() + 20000, &err) ==
              AGX_ERR_NOT_FOUND); /* its socket went with it */
        agx_sandbox_free(sb);
        agx_sandbox_config_free(cfg);
    }
}

/* ---- isolation ---- */

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 8) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void *serve(void *arg)
{
    int fd = *(int *)arg;
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[1024];
        if (read(c, buf, sizeof buf) > 0) {
            const char *reply = "HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nagx-ns-hello";
            if (write(c, reply, strlen(reply)) < 0) {
            }
        }
        close(c);
    }
}

static agx_sandbox *create_with(const char *net, const char *opt_k, const char *opt_v,
                                agx_client **c, agx_error *err)
{
    agx_sandbox_config *cfg = config("agx-test-busybox:1", net);
    if (opt_k)
        CHECK(agx_kv_set(agx_sandbox_config_options(cfg), opt_k, opt_v) == 0);
    agx_sandbox *sb;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, err), err);
    agx_sandbox_config_free(cfg);
    if (c)
        CHECK_OK(agx_client_connect_sandbox(sb, NULL, c, err), err);
    return sb;
}

static void isolation(void)
{
    agx_error err;
    agx_client *a, *b;
    agx_sandbox *sa = create_with("private", "ns.host_loopback", "1", &a, &err);
    agx_sandbox *sb = create_with("private", NULL, NULL, &b, &err);
    char secret[128], cmd[512];
    snprintf(secret, sizeof secret, "/tmp/agx-ns-secret-%d", (int)getpid());
    FILE *f = fopen(secret, "w");
    CHECK(f && fputs("host-secret\n", f) >= 0 && fclose(f) == 0);

    /* processes: its own PID namespace, init first */
    agx_value *r = run(a, "ls /proc | grep -c '^[0-9]'; tr '\\0' ' ' </proc/1/cmdline", &err);
    CHECK_CONTAINS(out_of(r), "agentix-ns-init");
    CHECK(atoi(out_of(r)) < 20);
    agx_value_free(r);
    snprintf(cmd, sizeof cmd, "grep -l 'test[_]ns' /proc/*/cmdline 2>/dev/null | wc -l");
    r = run(a, cmd, &err);
    CHECK(atoi(out_of(r)) == 0);
    agx_value_free(r);

    /* the runtime's token: in no environment of the sandbox, and PID 1 holds only its stdio
     * (the server read it from a pipe, AGENTIX_TOKEN_FD) */
    r = run(a, "for p in /proc/[0-9]*; do cat $p/environ; echo; done 2>/dev/null | "
               "tr '\\0' '\\n' | grep AGENTIX_TOKEN; echo fds: $(ls /proc/1/fd)", &err);
    CHECK(agx_sandbox_token(sa) && strlen(agx_sandbox_token(sa)) >= 16);
    CHECK(!strstr(out_of(r), agx_sandbox_token(sa)));
    CHECK(!strstr(out_of(r), "AGENTIX_TOKEN="));
    CHECK_CONTAINS(out_of(r), "fds: 0 1 2\n");
    agx_value_free(r);

    /* host files outside its root */
    snprintf(cmd, sizeof cmd, "cat %s 2>&1; ls /var/lib/docker 2>&1 | head -1", secret);
    r = run(a, cmd, &err);
    CHECK(!strstr(out_of(r), "host-secret"));
    agx_value_free(r);

    /* another sandbox's files */
    r = run(a, "echo mine > /tmp/agx-a-marker && echo written", &err);
    CHECK_CONTAINS(out_of(r), "written");
    agx_value_free(r);
    r = run(b, "cat /tmp/agx-a-marker 2>&1 || echo absent", &err);
    CHECK_CONTAINS(out_of(r), "absent");
    agx_value_free(r);

    /* a server on the host's 127.0.0.1 */
    int port, lfd = listen_loopback(&port);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, serve, &lfd) == 0);
    /* private + host_loopback: the gateway address reaches the host's loopback. (Not `wget -T`:
     * Debian 12's busybox is built without FEATURE_WGET_TIMEOUT and its -T writes through NULL,
     * a segfault on any machine; timeout(1) bounds it instead.) */
    snprintf(cmd, sizeof cmd,
             "gw=$(ip route | awk '/default/ {print $3; exit}'); "
             "timeout 5 wget -q -O - http://$gw:%d/ 2>&1", port);
    r = run(a, cmd, &err);
    CHECK_CONTAINS(out_of(r), "agx-ns-hello");
    agx_value_free(r);
    /* private without it: the host's loopback stays out of reach */
    r = run(b, cmd, &err);
    CHECK(!strstr(out_of(r), "agx-ns-hello"));
    agx_value_free(r);
    /* network none: no route anywhere, its 127.0.0.1 is its own */
    agx_sandbox *sn = create_with("none", NULL, NULL, NULL, &err);
    agx_client_free(b);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    /* none: check from its own network namespace (entered through the init) that the host's
     * 127.0.0.1 server is out of reach and lo is its only link */
    char ns_cmd[512];
    agx_sandbox_info *info;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sn), &info, &err), &err);
    agx_sandbox_info_free(info);
    char rec[256];
    snprintf(rec, sizeof rec, "%s/sandboxes/%s/sandbox.json", root, agx_sandbox_id(sn));
    snprintf(ns_cmd, sizeof ns_cmd,
             "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/' %s); "
             "nsenter -t $pid -n -m -p busybox timeout 3 busybox wget -q -O - http://127.0.0.1:%d/ 2>&1; "
             "nsenter -t $pid -n ip -o link | wc -l", rec, port);
    FILE *p = popen(ns_cmd, "r");
    char line[512], all[2048] = "";
    while (p && fgets(line, sizeof line, p))
        strncat(all, line, sizeof all - strlen(all) - 1);
    CHECK(p && pclose(p) == 0);
    CHECK(!strstr(all, "agx-ns-hello"));
    CHECK_CONTAINS(all, "1\n"); /* only lo */
    shutdown(lfd, SHUT_RDWR);
    close(lfd);
    pthread_join(t, NULL);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sn), &err), &err);
    agx_sandbox_free(sn);
    agx_client_free(a);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sa), &err), &err);
    agx_sandbox_free(sa);
    unlink(secret);
}

/* ---- limits ---- */

static void limits(void)
{
    agx_error err;
    /* memory: 64 MiB, the task asks for ~300 MB. Under ASan the runtime in the sandbox is
     * instrumented too (shadow memory, quarantine) and alone comes near 64 MiB, so the limit and
     * the ask grow: the task must stay the group's largest process, the one the kernel kills. */
#if defined(__SANITIZE_ADDRESS__)
    const uint64_t limit = 320u << 20;
    const char *ask = "x=$(head -c 900000000 /dev/zero | tr '\\0' a); echo ${#x}";
#else
    const uint64_t limit = 64u << 20;
    const char *ask = "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo ${#x}";
#endif
    agx_sandbox_config *cfg = config("agx-test-debian:12", "private");
    CHECK(agx_sandbox_config_set_memory(cfg, limit) == 0);
    agx_sandbox *sb;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    agx_sandbox_config_free(cfg);
    agx_client *c;
    CHECK_OK(agx_client_connect_sandbox(sb, NULL, &c, &err), &err);
    agx_value *r = run(c, ask, &err);
    CHECK(exit_of(r) != 0);
    agx_value_free(r);
    agx_sandbox_info *info;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    const char *ooms = agx_kv_get(agx_sandbox_info_labels_const(info), "agentix.ns.oom_kills");
    CHECK_MSG(ooms && atoi(ooms) >= 1, "expected an OOM kill to be counted, got %s",
              ooms ? ooms : "none");
    agx_sandbox_info_free(info);
    r = run(c, "echo still-alive", &err); /* the sandbox survives its task's OOM */
    CHECK_CONTAINS(out_of(r), "still-alive");
    agx_value_free(r);
    agx_client_free(c);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);

    /* pids: a fork bomb is contained */
    sb = create_with("private", "ns.pids", "64", &c, &err);
    r = run(c, "timeout 5 bash -c ':(){ :|:& };:' >/dev/null 2>&1; sleep 1; echo survived", &err);
    CHECK_CONTAINS(out_of(r), "survived");
    agx_value_free(r);
    /* the host is fine meanwhile: another sandbox comes up and answers */
    agx_client *c2;
    agx_sandbox *other = create_with("private", NULL, NULL, &c2, &err);
    r = run(c2, "echo responsive", &err);
    CHECK_CONTAINS(out_of(r), "responsive");
    agx_value_free(r);
    agx_client_free(c2);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(other), &err), &err);
    agx_sandbox_free(other);
    agx_client_free(c);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
}

static void unenforceable(void)
{
    /* A fresh deployment that cannot see the memory controller (the seam root cannot switch off
     * for real): a memory limit is refused by name, nothing is left behind. */
    agx_error err;
    setenv("AGENTIX_NS_TEST_HIDE_CONTROLLERS", "memory", 1);
    agx_deployment *d;
    CHECK_OK(agx_load_deployment("ns", &d, &err), &err);
    unsetenv("AGENTIX_NS_TEST_HIDE_CONTROLLERS");
    agx_sandbox_config *cfg = config("agx-test-busybox:1", "none");
    CHECK(agx_sandbox_config_set_memory(cfg, 64u << 20) == 0);
    agx_sandbox *sb = NULL;
    int rc = agx_deployment_create(d, cfg, &sb, &err);
    CHECK(rc == AGX_ERR_UNSUPPORTED && !sb);
    CHECK_CONTAINS(err.message, "memory");
    agx_sandbox_config_free(cfg);
    agx_deployment_free(d);
}

/* ---- leak counting ---- */

static int leftovers(const char *when)
{
    return ns_world_leftovers(root, when);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double pct(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int k = (int)(q * n + 0.999999);
    return v[k < 1 ? 0 : (k > n ? n - 1 : k - 1)];
}

/* The host's open descriptors and resident set, to see that cycles leak neither. */
static void host_usage(int *fds, long *rss_kb)
{
    *fds = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        *fds += e->d_name[0] != '.';
    if (d)
        closedir(d);
    *rss_kb = -1;
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", rss_kb) == 1)
            break;
    if (f)
        fclose(f);
}

/* Sequential create→delete cycles per network mode, then the leftover count. Prints figures
 * (create and delete p50/p95, the host's descriptors and RSS before and after): the soak script
 * (bench/ns/soak.sh) runs the same with a large N. No timing is asserted. */
static void cycles(void)
{
    const char *env = getenv("AGX_NS_CYCLES");
    int n = env ? atoi(env) : 50;
    CHECK_MSG(n >= 1 && n <= 1000000, "AGX_NS_CYCLES=%s: want 1..1000000", env);
    agx_error err;
    static const char *const nets[] = {"none", "private"};
    double *cr = calloc((size_t)n, sizeof *cr), *dl = calloc((size_t)n, sizeof *dl);
    CHECK(cr && dl);
    for (int m = 0; m < 2; m++) {
        agx_sandbox_config *cfg = config("agx-test-busybox:1", nets[m]);
        int fd0, fd1;
        long rss0, rss1;
        host_usage(&fd0, &rss0);
        double t0 = now_ms();
        for (int i = 0; i < n; i++) {
            agx_sandbox *sb;
            double a = now_ms();
            CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
            double b = now_ms();
            CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
            cr[i] = b - a;
            dl[i] = now_ms() - b;
            agx_sandbox_free(sb);
        }
        double wall = (now_ms() - t0) / 1e3;
        agx_sandbox_config_free(cfg);
        host_usage(&fd1, &rss1);
        fprintf(stderr, "%d cycles with network %s: %.1f s, %.1f cycles/s; create p50 %.1f ms "
                "p95 %.1f ms, delete p50 %.1f ms p95 %.1f ms; host fds %d -> %d, RSS %ld -> %ld "
                "KiB\n", n, nets[m], wall, n / wall, pct(cr, n, 0.5), pct(cr, n, 0.95),
                pct(dl, n, 0.5), pct(dl, n, 0.95), fd0, fd1, rss0, rss1);
        CHECK_MSG(fd1 <= fd0 + 4, "the host holds %d descriptors after the cycles, %d before",
                  fd1, fd0);
    }
    free(cr);
    free(dl);
    CHECK(leftovers("after the cycles") == 0);
}

/* ---- a host killed mid-create ---- */

typedef int (*sweep_fn)(int *removed, agx_error *err);

static void crash(void)
{
    void *so = dlopen(AGX_NS_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    CHECK_MSG(so, "%s", dlerror());
    sweep_fn sweep = (sweep_fn)dlsym(so, "agx_backend_ns_sweep");
    CHECK(sweep);
    /* Each sweep runs once the only creator is dead: a folder it left without a record (killed
     * between mkdir and the record) is abandoned at once, not after the default minute. */
    CHECK(setenv("AGENTIX_NS_STALE_DIR_MS", "0", 1) == 0);
    int killed_mid = 0;
    for (int i = 0; i < 16; i++) {
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            agx_error e;
            agx_deployment *d;
            if (agx_load_deployment("ns", &d, &e))
                _exit(3);
            agx_sandbox_config *cfg = config("agx-test-busybox:1", i % 2 ? "private" : "none");
            agx_sandbox *sb;
            _exit(agx_deployment_create(d, cfg, &sb, &e) == 0 ? 0 : 4);
        }
        sleep_ms(2 + 4 * i); /* instants across the create (about 30-70 ms here) */
        kill(child, SIGKILL);
        int status;
        waitpid(child, &status, 0);
        killed_mid += WIFSIGNALED(status);
        int removed = 0;
        agx_error err;
        CHECK_OK(sweep(&removed, &err), &err);
    }
    fprintf(stderr, "%d of 16 hosts were killed before their create returned\n", killed_mid);
    CHECK(killed_mid > 0);
    CHECK(leftovers("after the sweeps") == 0);
    unsetenv("AGENTIX_NS_STALE_DIR_MS");
    dlclose(so);
}

/* ---- expiry: sandboxes that end themselves, then gc ---- */

#define EXPIRY_MS 3000

/* The sandbox's info, CHECKed to be found. */
static agx_sandbox_info *get_info(const char *id)
{
    agx_error err;
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, id, &info, &err), &err);
    return info;
}

/* The ownership record (owner labels, nonce, expiry) in get and in list. */
static void check_record(const char *id, const char *owner_pid)
{
    agx_sandbox_info *info = get_info(id);
    const agx_kv *l = agx_sandbox_info_labels_const(info);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    CHECK(agx_kv_get(l, AGX_LABEL_OWNER_HOST) && agx_kv_get(l, AGX_LABEL_OWNER_START) &&
          agx_kv_get(l, AGX_LABEL_RUN) && agx_kv_get(l, AGX_LABEL_CREATE));
    CHECK_STREQ(agx_kv_get(l, AGX_LABEL_OWNER_PID), owner_pid);
    CHECK(agx_sandbox_info_expires_at(info) > 0 &&
          agx_sandbox_info_expires_at(info) == agx_label_unix_ms(agx_kv_get(l, AGX_LABEL_EXPIRES)));
    agx_kv *by_nonce = agx_kv_new();
    agx_sandbox_list *list = NULL;
    agx_error err;
    CHECK(by_nonce && agx_kv_set(by_nonce, AGX_LABEL_CREATE, agx_kv_get(l, AGX_LABEL_CREATE)) == 0);
    CHECK_OK(agx_deployment_list(dep, by_nonce, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 1);
    CHECK_STREQ(agx_sandbox_info_id(agx_sandbox_list_at(list, 0)), id);
    CHECK(agx_sandbox_info_expires_at(agx_sandbox_list_at(list, 0)) > 0);
    agx_sandbox_list_free(list);
    agx_kv_free(by_nonce);
    agx_sandbox_info_free(info);
}

/* Polls until get reports the sandbox's expiry later than `than` (the owner's renewals reach the
 * record), bounded by 60 s: never a timing assertion, only an upper bound for a loaded machine. */
static void wait_extended(const char *id, int64_t than)
{
    for (int i = 0;; i++) {
        agx_sandbox_info *info = get_info(id);
        int64_t at = agx_sandbox_info_expires_at(info);
        agx_sandbox_info_free(info);
        if (at > than)
            return;
        CHECK_MSG(i < 600, "sandbox %s's expiry stayed at %lld for 60 s while its owner lived", id,
                  (long long)at);
        sleep_ms(100);
    }
}

/* Polls until the sandbox stopped and no process is left in any sandbox group, bounded by 120 s. */
static void wait_ended(const char *id)
{
    for (int i = 0;; i++) {
        agx_sandbox_info *info = get_info(id);
        int stopped = agx_sandbox_info_state(info) == AGX_SANDBOX_STOPPED;
        agx_sandbox_info_free(info);
        if (stopped && ns_world_processes() == 0)
            return;
        CHECK_MSG(i < 1200, "sandbox %s still runs (or left processes) 120 s after its owner "
                  "stopped renewing a %d ms expiry", id, EXPIRY_MS);
        sleep_ms(100);
    }
}

/* A library host: creates one sandbox with a short expiry, writes its id, lives on (renewing). */
static pid_t owner_host(char *id, size_t n)
{
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        close(p[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failing CHECK must not leave it holding ctest's pipe */
        agx_error e;
        agx_deployment *d;
        agx_sandbox *sb;
        agx_sandbox_config *cfg = config("agx-test-busybox:1", "none");
        if (agx_load_deployment("ns", &d, &e) || agx_sandbox_config_set_expiry_ms(cfg, EXPIRY_MS) ||
            agx_deployment_create(d, cfg, &sb, &e))
            _exit(3);
        dprintf(p[1], "%s\n", agx_sandbox_id(sb));
        for (;;)
            pause();
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    CHECK(f && fgets(id, (int)n, f));
    fclose(f);
    id[strcspn(id, "\n")] = '\0';
    CHECK_MSG(*id, "the owner host's create failed");
    return child;
}

/* Runs a shell command, returns its stdout (caller frees). */
static char *output_of(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    CHECK(p);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    CHECK(out);
    for (size_t r; (r = fread(out + len, 1, cap - 1 - len, p)) > 0;)
        len += r;
    out[len] = '\0';
    CHECK_MSG(pclose(p) == 0, "command failed: %s\n%s", cmd, out);
    return out;
}

static void expiry(void)
{
    char owned[128], pid[24], cmd[2048];
    pid_t host = owner_host(owned, sizeof owned);
    snprintf(pid, sizeof pid, "%d", (int)host);
    check_record(owned, pid);
    agx_sandbox_info *info = get_info(owned);
    int64_t first = agx_sandbox_info_expires_at(info);
    agx_sandbox_info_free(info);
    wait_extended(owned, first);
    /* A shell's sandbox: no owner process, only its expiry ends it. */
    snprintf(cmd, sizeof cmd, "'%s' create --backend ns --image agx-test-busybox:1 --bundle '%s' "
             "--no-owner --expiry 3s --json", AGX_CLI, bundle);
    char *json = output_of(cmd), loose[128] = "";
    const char *at = strstr(json, "\"id\":");
    CHECK_MSG(at && sscanf(at + 5, " \"%127[^\"]\"", loose) == 1, "no id in: %s", json);
    free(json);
    info = get_info(loose);
    CHECK(agx_sandbox_info_expires_at(info) > 0);
    CHECK_STREQ(agx_kv_get(agx_sandbox_info_labels_const(info), AGX_LABEL_OWNER_PID), "0");
    agx_sandbox_info_free(info);
    CHECK(kill(host, SIGKILL) == 0 && waitpid(host, NULL, 0) == host);
    wait_ended(owned);
    wait_ended(loose);
    /* What the host side keeps (cgroups, folders) waits for gc, which names both first. */
    snprintf(cmd, sizeof cmd, "'%s' gc --backend ns --grace 0s --dry-run --json", AGX_CLI);
    char *dry = output_of(cmd);
    fprintf(stderr, "gc --dry-run: %s", dry);
    CHECK_CONTAINS(dry, owned);
    CHECK_CONTAINS(dry, loose);
    CHECK_CONTAINS(dry, "would-delete");
    CHECK_CONTAINS(dry, "would-expire");
    free(dry);
    snprintf(cmd, sizeof cmd, "'%s' gc --backend ns --grace 0s", AGX_CLI);
    free(output_of(cmd));
    CHECK(leftovers("after gc") == 0);
}

int main(int argc, char **argv)
{
    CHECK_MSG(argc == 2, "usage: test_ns e2e|isolation|limits|cycles|crash|expiry");
    /* One per scenario and build tree: scenarios and trees side by side never share a bundle. */
    snprintf(root, sizeof root, "/var/tmp/agx-ns-%.20s-%s", argv[1], AGX_TEST_BUNDLE_TAG);
    char cmd[2048];
    setenv("AGENTIX_NS_ROOT", root, 1);
    /* What a failed earlier run left (its host process is dead) goes through the sweep. */
    void *so = dlopen(AGX_NS_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    CHECK_MSG(so, "%s", dlerror());
    sweep_fn sweep = (sweep_fn)dlsym(so, "agx_backend_ns_sweep");
    int removed = 0;
    agx_error serr;
    CHECK(sweep);
    CHECK_OK(sweep(&removed, &serr), &serr);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && ! ls -A %s/sandboxes 2>/dev/null | grep -q .", root,
             root);
    CHECK_MSG(system(cmd) == 0, "the sweep left sandboxes of an earlier run in %s/sandboxes", root);
    /* The bundle: the real runtime and the demo module, from `agentix build --output DIR`. */
    snprintf(bundle, sizeof bundle, "%s/bundle", root);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && '%s' build --name agx-ns-test:1 --module '%s' "
                              "--output '%s' --quiet >/dev/null", bundle, AGX_CLI, AGX_DEMO_MODULE,
             bundle);
    CHECK_MSG(system(cmd) == 0, "agentix build failed: %s", cmd);
    agx_error err;
    ns_world_enter(argv[1]);
    CHECK_OK(agx_load_deployment("ns", &dep, &err), &err);
    if (strcmp(argv[1], "e2e") == 0)
        e2e();
    else if (strcmp(argv[1], "isolation") == 0)
        isolation();
    else if (strcmp(argv[1], "limits") == 0) {
        limits();
        unenforceable();
    } else if (strcmp(argv[1], "cycles") == 0)
        cycles();
    else if (strcmp(argv[1], "crash") == 0)
        crash();
    else if (strcmp(argv[1], "expiry") == 0)
        expiry();
    else
        CHECK_MSG(0, "unknown scenario %s", argv[1]);
    agx_deployment_free(dep);
    CHECK(leftovers("at the end") == 0);
    ns_world_leave();
    printf("test_ns %s: ok\n", argv[1]);
    return 0;
}
