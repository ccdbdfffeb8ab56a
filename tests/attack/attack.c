/* attack.c — see attack.h. */
#include "attack.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static char module_dir[PATH_MAX];

#define LIVE_MAX 8
static atk_sandbox *live[LIVE_MAX];
static bool exiting;

static void delete_live(void)
{
    exiting = true;
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i])
            atk_delete(live[i]);
}

void atk_init(int argc, char **argv)
{
    CHECK_MSG(argc >= 3, "usage: %s <agentix-server> <module dir>", argv[0]);
    CHECK_MSG(realpath(argv[2], module_dir), "module folder %s: %s", argv[2], strerror(errno));
    setenv("AGENTIX_LOCAL_SERVER", argv[1], 1);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    atexit(delete_live);
}

long atk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_ms_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void atk_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void atk_figure(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("figure: %s ", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* ---- /proc ---- */

static bool read_text(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

static long status_kib(pid_t pid, const char *key)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!read_text(path, buf, sizeof buf))
        return 0;
    char *p = strstr(buf, key);
    return p ? strtol(p + strlen(key), NULL, 10) : 0;
}

long atk_rss_kib(pid_t pid) { return status_kib(pid, "VmRSS:"); }
long atk_hwm_kib(pid_t pid) { return status_kib(pid, "VmHWM:"); }

/* Fields after the command name of /proc/<pid>/stat: field n (1-based) into out. */
static bool stat_field(pid_t pid, int n, unsigned long long *out, char *state)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!read_text(path, buf, sizeof buf))
        return false;
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    p += 2;
    if (state)
        *state = *p;
    for (int f = 3; f < n; f++) {
        p = strchr(p, ' ');
        if (!p)
            return false;
        p++;
    }
    *out = strtoull(p, NULL, 10);
    return true;
}

double atk_cpu_s(pid_t pid)
{
    unsigned long long ut = 0, st = 0;
    stat_field(pid, 14, &ut, NULL);
    stat_field(pid, 15, &st, NULL);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

uint64_t atk_start_ticks(pid_t pid)
{
    unsigned long long v;
    char state = 0;
    if (!stat_field(pid, 22, &v, &state) || state == 'Z' || state == 'X')
        return 0;
    return v;
}

bool atk_alive(pid_t pid, uint64_t ticks)
{
    uint64_t now = atk_start_ticks(pid);
    return now != 0 && (ticks == 0 || now == ticks);
}

bool atk_gone_within(pid_t pid, uint64_t ticks, int ms)
{
    long deadline = atk_now_ms() + ms;
    while (atk_alive(pid, ticks)) {
        if (atk_now_ms() > deadline)
            return false;
        atk_sleep_ms(10);
    }
    return true;
}

static bool exe_is(pid_t pid, const char *base)
{
    char path[64], exe[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    const char *slash = strrchr(exe, '/');
    return strcmp(slash ? slash + 1 : exe, base) == 0;
}

static pid_t ppid_of(pid_t pid)
{
    unsigned long long v;
    return stat_field(pid, 4, &v, NULL) ? (pid_t)v : 0;
}

/* The child of parent running exe base (the newest one, by pid order being no guide: the first
 * found that is alive). */
static pid_t child_running(pid_t parent, const char *base)
{
    DIR *d = opendir("/proc");
    CHECK(d);
    pid_t found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid > 0 && ppid_of(pid) == parent && exe_is(pid, base) && atk_start_ticks(pid))
            found = pid;
    }
    closedir(d);
    return found;
}

pid_t atk_worker_pid(const atk_sandbox *s) { return child_running(s->pid, "agentix-worker"); }

/* ---- the sandbox ---- */

void atk_sandbox_dir(const atk_sandbox *s, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", s->root, agx_sandbox_id(s->sb));
}

void atk_start(atk_sandbox *s, const char *const *env)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/agx-attack-XXXXXX");
    CHECK(mkdtemp(s->dir));
    snprintf(s->root, sizeof s->root, "%s/local", s->dir);
    for (int i = 0; i < LIVE_MAX; i++)
        if (!live[i]) {
            live[i] = s;
            break;
        }
    agx_error err;
    agx_error_clear(&err);
    setenv("AGENTIX_LOCAL_ROOT", s->root, 1);
    CHECK_OK(agx_load_deployment("local", &s->dep, &err), &err);
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg);
    agx_kv *kv = agx_sandbox_config_env(cfg);
    CHECK(agx_kv_set(kv, "AGENTIX_MODULE_PATH", module_dir) == 0);
    for (const char *const *e = env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        CHECK(eq);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - *e), *e);
        CHECK(agx_kv_set(kv, key, eq + 1) == 0);
    }
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);
    int rc = agx_deployment_create(s->dep, cfg, &s->sb, &err);
    agx_sandbox_config_free(cfg);
    CHECK_OK(rc, &err);
    const char *url = agx_sandbox_runtime_url(s->sb), *token = agx_sandbox_token(s->sb);
    CHECK(url && token && strlen(token) < sizeof s->token);
    snprintf(s->token, sizeof s->token, "%s", token);
    CHECK_MSG(sscanf(url, "http://127.0.0.1:%d", &s->port) == 1, "runtime url %s", url);
    s->sh.port = s->port;
    s->pid = child_running(getpid(), "agentix-server");
    CHECK_MSG(s->pid > 0, "no agentix-server child found for %s", agx_sandbox_id(s->sb));
    s->sh.pid = s->pid;
}

void atk_delete(atk_sandbox *s)
{
    if (s->sb) {
        agx_error err;
        agx_error_clear(&err);
        int rc = agx_deployment_delete(s->dep, agx_sandbox_id(s->sb), &err);
        agx_sandbox_free(s->sb);
        s->sb = NULL;
        if (!exiting)
            CHECK_OK(rc, &err);
    }
    if (s->dep) {
        agx_deployment_free(s->dep);
        s->dep = NULL;
    }
    if (s->dir[0]) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i] == s)
            live[i] = NULL;
}

/* ---- raw TCP and HTTP ---- */

int atk_tcp(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads until the end of the HTTP head (and, for GET, the body of Content-Length bytes); the
 * status or -1. */
static int read_http(int fd, bool head, long deadline)
{
    char buf[8192];
    size_t len = 0;
    for (;;) {
        int left = (int)(deadline - atk_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        if (head)
            break;
        char *cl = strcasestr(buf, "content-length:");
        size_t want = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
        if (len - (size_t)(end + 4 - buf) >= want)
            break;
        if (len >= sizeof buf - 1)
            break;
    }
    buf[len] = '\0';
    int status;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    return status;
}

int atk_http(int port, bool head, const char *path, int timeout_ms, double *ms)
{
    double t0 = now_ms_f();
    long deadline = atk_now_ms() + timeout_ms;
    int fd = atk_tcp(port, timeout_ms);
    int status = -1;
    if (fd >= 0) {
        char req[256];
        int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                         head ? "HEAD" : "GET", path);
        if (send_all(fd, req, (size_t)n))
            status = read_http(fd, head, deadline);
        close(fd);
    }
    if (ms)
        *ms = now_ms_f() - t0;
    return status;
}

double atk_health_median_ms(int port, int n)
{
    double v[64];
    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++) {
        CHECK_MSG(atk_http(port, false, "/health", ATK_T, &v[i]) == 200, "GET /health failed");
    }
    for (int i = 1; i < n; i++) /* insertion sort: n is small */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

/* ---- the prober ---- */

struct atk_prober {
    pthread_t th;
    int port, timeout_ms;
    pid_t server;
    volatile bool stop;
    double worst;
    long peak_rss;
    int failures;
};

static void *probe(void *arg)
{
    atk_prober *p = arg;
    while (!p->stop) {
        double ms;
        int st = atk_http(p->port, false, "/health", p->timeout_ms, &ms);
        if (st != 200) {
            p->failures++;
            ms = ms > p->timeout_ms ? ms : p->timeout_ms;
        }
        if (ms > p->worst)
            p->worst = ms;
        long rss = atk_rss_kib(p->server);
        if (rss > p->peak_rss)
            p->peak_rss = rss;
        atk_sleep_ms(20);
    }
    return NULL;
}

atk_prober *atk_prober_start(int port, pid_t server, int timeout_ms)
{
    atk_prober *p = calloc(1, sizeof *p);
    CHECK(p);
    p->port = port;
    p->server = server;
    p->timeout_ms = timeout_ms;
    CHECK(pthread_create(&p->th, NULL, probe, p) == 0);
    return p;
}

void atk_prober_stop(atk_prober *p, double *worst_ms, long *peak_rss_kib, int *failures)
{
    p->stop = true;
    pthread_join(p->th, NULL);
    if (worst_ms)
        *worst_ms = p->worst;
    if (peak_rss_kib)
        *peak_rss_kib = p->peak_rss;
    if (failures)
        *failures = p->failures;
    free(p);
}

/* ---- raw websocket ---- */

bool atk_ws_header(int fd, int opcode, uint64_t len)
{
    unsigned char h[14];
    size_t n = 0;
    h[n++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[n++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[n++] = 0x80 | 126;
        h[n++] = (unsigned char)(len >> 8);
        h[n++] = (unsigned char)len;
    } else {
        h[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[n++] = (unsigned char)(len >> (8 * i));
    }
    memset(h + n, 0, 4); /* the zero masking key: payload bytes go out as they are */
    n += 4;
    return send_all(fd, h, n);
}

size_t atk_ws_payload(int fd, const void *data, size_t len)
{
    const char *p = data;
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, p + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    return sent;
}

bool atk_ws_frame(int fd, int opcode, const void *data, size_t len)
{
    return atk_ws_header(fd, opcode, len) && atk_ws_payload(fd, data, len) == len;
}

static bool recv_exact(int fd, void *buf, size_t len, long deadline)
{
    char *p = buf;
    while (len) {
        int left = (int)(deadline - atk_now_ms());
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            return false;
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* One server frame (unmasked): opcode and up to cap payload bytes (the rest skipped). */
static int read_frame(int fd, char *out, size_t cap, size_t *len, long deadline)
{
    unsigned char h[2];
    if (!recv_exact(fd, h, 2, deadline))
        return -1;
    uint64_t n = h[1] & 0x7f;
    if (n == 126 || n == 127) {
        unsigned char e[8];
        size_t k = n == 126 ? 2 : 8;
        if (!recv_exact(fd, e, k, deadline))
            return -1;
        n = 0;
        for (size_t i = 0; i < k; i++)
            n = n << 8 | e[i];
    }
    size_t keep = n < cap ? (size_t)n : cap;
    if (keep && !recv_exact(fd, out, keep, deadline))
        return -1;
    for (uint64_t skipped = keep; skipped < n; skipped++) {
        char c;
        if (!recv_exact(fd, &c, 1, deadline))
            return -1;
    }
    *len = keep;
    return h[0] & 0x0f;
}

bool atk_ws_expect_text(int fd, const char *prefix, char *out, size_t cap, int timeout_ms)
{
    long deadline = atk_now_ms() + timeout_ms;
    char buf[4096];
    for (;;) {
        size_t len;
        int op = read_frame(fd, buf, sizeof buf - 1, &len, deadline);
        if (op < 0 || op == 8)
            return false;
        buf[len] = '\0';
        if (op == 1 && strncmp(buf, prefix, strlen(prefix)) == 0) {
            if (out)
                snprintf(out, cap, "%s", buf);
            return true;
        }
    }
}

int atk_ws_open(int port, int timeout_ms)
{
    int fd = atk_tcp(port, timeout_ms);
    if (fd < 0)
        return -1;
    static const char req[] = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    char buf[2048];
    size_t len = 0;
    long deadline = atk_now_ms() + timeout_ms;
    bool ok = send_all(fd, req, sizeof req - 1);
    /* The head ends with an empty line; read it byte by byte so no frame byte is swallowed. */
    while (ok && len < sizeof buf - 1 && !(len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0))
        ok = recv_exact(fd, buf + len++, 1, deadline);
    buf[len] = '\0';
    if (!ok || strncmp(buf, "HTTP/1.1 101", 12) != 0 ||
        !atk_ws_expect_text(fd, "0{", NULL, 0, timeout_ms)) {
        close(fd);
        return -1;
    }
    return fd;
}

bool atk_closed_within(int fd, int timeout_ms)
{
    long deadline = atk_now_ms() + timeout_ms;
    char buf[4096];
    for (;;) {
        int left = (int)(deadline - atk_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0)
            return false;
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return true; /* EOF or reset */
        /* a close frame (0x88) counts as closed too */
        if ((unsigned char)buf[0] == 0x88)
            return true;
    }
}

/* ---- a well-behaved host ---- */

sh_client *atk_connect(const atk_sandbox *s)
{
    agx_error why;
    agx_error_clear(&why);
    sh_client *c = sh_connect(&s->sh, s->token, &why);
    CHECK_MSG(c, "a client with the token was refused: %s", why.message);
    return c;
}

void atk_json_escape(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
}

int atk_bash(sh_client *c, const char *cid, const char *command, char *out, size_t cap)
{
    char esc[8192], json[9000];
    atk_json_escape(command, esc, sizeof esc);
    snprintf(json, sizeof json,
             "{\"call_id\":\"%s\",\"target\":\"agentix.bash::run\",\"kwargs\":{\"command\":\"%s\"}}",
             cid, esc);
    sh_emit_json(c, "unary", json);
    sh_event *e = sh_expect(c, "unary:result", cid, 60000);
    const agx_value *v = sh_get(e, "value");
    int code = (int)agx_value_get_int64(agx_value_map_get(v, "exit_code"));
    if (out) {
        const char *o = agx_value_get_string(agx_value_map_get(v, "stdout"), NULL);
        snprintf(out, cap, "%s", o ? o : "");
    }
    sh_event_free(e);
    return code;
}

void atk_check_served(const atk_sandbox *s)
{
    sh_client *c = atk_connect(s);
    sh_emit_json(c, "unary", "{\"call_id\":\"ok1\",\"target\":\"demo::add\",\"args\":[40,2]}");
    sh_event *e = sh_expect(c, "unary:result", "ok1", ATK_T);
    CHECK(agx_value_get_int64(sh_get(e, "value")) == 42);
    sh_event_free(e);
    char out[64];
    CHECK(atk_bash(c, "ok2", "echo served", out, sizeof out) == 0);
    CHECK_STREQ(out, "served\n");
    sh_close(c);
}
