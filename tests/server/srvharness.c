/* srvharness.c — see srvharness.h. The client side runs the transport's agx_sio_client on a uv loop
 * owned by the test thread; the loop only runs inside the helpers below. */
#include "srvharness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int read_int_file(const char *path, long *out)
{
    char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    if (end == buf || *end != '\n')
        return -1;
    *out = v;
    return 0;
}

/* ---- the server process ---- */

/* A failed CHECK exits the test: servers it started must not outlive it. */
static pid_t running[8];

static void kill_running(void)
{
    if (getenv("SH_PAUSE_ON_EXIT")) /* debugging aid: inspect the servers before they go */
        sleep((unsigned)atoi(getenv("SH_PAUSE_ON_EXIT")));
    for (size_t i = 0; i < sizeof running / sizeof *running; i++)
        if (running[i] > 0) {
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
        }
}

static void track(pid_t pid, pid_t replace)
{
    static bool registered;
    if (!registered) {
        atexit(kill_running);
        registered = true;
    }
    for (size_t i = 0; i < sizeof running / sizeof *running; i++)
        if (running[i] == replace) {
            running[i] = pid;
            return;
        }
}

void sh_server_start(sh_server *s, const sh_paths *p, const char *token,
                     const char *const *extra_env, bool valgrind)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/agx-srvtest-XXXXXX");
    CHECK(mkdtemp(s->dir) != NULL);
    char port_file[300];
    snprintf(port_file, sizeof port_file, "%s/port", s->dir);
    snprintf(s->pid_file, sizeof s->pid_file, "%s/worker.pid", s->dir);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        unsetenv("LSAN_OPTIONS"); /* the test's suppressions are for its client side only */
        setenv("AGENTIX_BIND_HOST", "127.0.0.1", 1);
        setenv("AGENTIX_BIND_PORT", "0", 1);
        setenv("AGENTIX_PORT_FILE", port_file, 1);
        setenv("AGENTIX_MODULE_PATH", p->modules, 1);
        setenv("AGENTIX_WORKER_PID_FILE", s->pid_file, 1);
        if (token) {
            setenv("AGENTIX_TOKEN", token, 1);
        } else {
            unsetenv("AGENTIX_TOKEN");
            setenv("AGENTIX_AUTH", "none", 1); /* a server refuses to start without a token */
        }
        for (const char *const *e = extra_env; e && *e; e++)
            putenv((char *)*e);
        if (valgrind) {
            execlp("valgrind", "valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite,indirect",
                   "--show-leak-kinds=definite,indirect", "--track-fds=no", "--quiet", p->server,
                   (char *)NULL);
        } else {
            execl(p->server, p->server, (char *)NULL);
        }
        _exit(127);
    }
    s->pid = pid;
    track(pid, 0);
    long deadline = now_ms() + 60000, port = 0;
    while (read_int_file(port_file, &port) != 0) {
        int st;
        CHECK_MSG(waitpid(pid, &st, WNOHANG) == 0, "agentix-server exited at start (status %d)", st);
        CHECK_MSG(now_ms() < deadline, "agentix-server did not write its port file");
        sleep_ms(10);
    }
    CHECK(port > 0 && port < 65536);
    s->port = (int)port;
}

int sh_server_stop(sh_server *s, int sig, int timeout_ms)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, sig);
    long deadline = now_ms() + timeout_ms;
    int st = -1;
    for (;;) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid)
            break;
        if (now_ms() >= deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            st = -1;
            break;
        }
        sleep_ms(10);
    }
    track(0, s->pid);
    s->pid = 0;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", s->dir);
    return st;
}

pid_t sh_worker_pid(const sh_server *s, pid_t not_this)
{
    long deadline = now_ms() + 60000, v; /* a bound: a worker under valgrind beside hogs is slow */
    for (;;) {
        if (read_int_file(s->pid_file, &v) == 0 && v > 0 && (pid_t)v != not_this)
            return (pid_t)v;
        CHECK_MSG(now_ms() < deadline, "no worker pid in %s", s->pid_file);
        sleep_ms(10);
    }
}

/* The "<key>: <n> kB" line of a /proc file. */
static long status_field(const char *path, const char *key)
{
    char line[256];
    FILE *f = fopen(path, "r");
    long kib = 0;
    size_t kl = strlen(key);
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            kib = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

long sh_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    return status_field(path, "VmRSS");
}

void sh_mem_kib(pid_t pid, long *rss, long *pss, long *anon)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    *rss = sh_rss_kib(pid);
    *pss = status_field(path, "Pss");
    *anon = status_field(path, "Anonymous");
}

/* ---- the client ---- */

struct sh_client {
    uv_loop_t loop;
    uv_timer_t timer;
    agx_sio_client *cl;
    agx_sio_conn *conn;
    bool connected, closed, timed_out;
    agx_error why;
    sh_event *head, *tail;
    /* counting mode (throughput): stream:item events are counted, not queued, and credited */
    bool counting;
    uint32_t window, uncredited;
    size_t items, bytes;
    char count_cid[64];
};

static void emit_credit(sh_client *sc, uint32_t n)
{
    char json[128];
    snprintf(json, sizeof json, "{\"call_id\":\"%s\",\"n\":%u}", sc->count_cid, n);
    agx_value *v = NULL;
    void *mp;
    size_t len;
    agx_error err;
    CHECK_OK(agx_value_from_json(json, strlen(json), NULL, &v, &err), &err);
    CHECK_OK(agx_value_to_msgpack(v, &mp, &len, &err), &err);
    struct iovec iov = {mp, len};
    CHECK_OK(agx_sio_conn_emit(sc->conn, "credit", NULL, &iov, 1, NULL, &err), &err);
    free(mp);
    agx_value_free(v);
}

static void on_connect(agx_sio_conn *c, void *ud)
{
    sh_client *sc = ud;
    sc->conn = c;
    sc->connected = true;
}

static void on_event(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    (void)c;
    sh_client *sc = ud;
    if (sc->counting && strcmp(p->event, "stream:item") == 0 && p->nattach == 1) {
        sc->items++;
        sc->bytes += p->attach[0].len;
        if (++sc->uncredited >= sc->window / 2) {
            emit_credit(sc, sc->uncredited);
            sc->uncredited = 0;
        }
        return;
    }
    sh_event *e = calloc(1, sizeof *e);
    CHECK(e);
    snprintf(e->name, sizeof e->name, "%s", p->event);
    if (p->type == AGX_SIO_BINARY_EVENT && p->nattach == 1) {
        agx_error err;
        CHECK_OK(agx_value_from_msgpack(p->attach[0].data, p->attach[0].len, NULL, &e->payload,
                                        &err),
                 &err);
    }
    if (sc->tail)
        sc->tail->next = e;
    else
        sc->head = e;
    sc->tail = e;
}

static void on_close(agx_sio_conn *c, const agx_error *why, void *ud)
{
    (void)c;
    sh_client *sc = ud;
    sc->closed = true;
    sc->conn = NULL;
    agx_error_copy(&sc->why, why);
}

static void timer_fired(uv_timer_t *t)
{
    sh_client *sc = t->data;
    sc->timed_out = true;
}

/* Runs the loop until cond(sc) or ms pass; returns cond(sc). */
static bool run_until(sh_client *sc, bool (*cond)(sh_client *), int ms)
{
    if (ms == 0) {
        uv_run(&sc->loop, UV_RUN_NOWAIT); /* a 0 ms timer would fire before the poll, which blocks */
        return cond(sc);
    }
    sc->timed_out = false;
    uv_timer_start(&sc->timer, timer_fired, (uint64_t)ms, 0);
    while (!cond(sc) && !sc->timed_out)
        uv_run(&sc->loop, UV_RUN_ONCE);
    uv_timer_stop(&sc->timer);
    return cond(sc);
}

static bool is_settled(sh_client *sc) { return sc->connected || sc->closed; }
static bool has_event(sh_client *sc) { return sc->head != NULL || sc->closed; }
static bool never(sh_client *sc)
{
    (void)sc;
    return false;
}

static void loop_free(sh_client *sc)
{
    uv_close((uv_handle_t *)&sc->timer, NULL);
    if (sc->cl)
        agx_sio_client_close(sc->cl);
    uv_run(&sc->loop, UV_RUN_DEFAULT);
    agx_sio_client_free(sc->cl);
    CHECK(uv_loop_close(&sc->loop) == 0);
    while (sc->head) {
        sh_event *e = sc->head;
        sc->head = e->next;
        sh_event_free(e);
    }
    free(sc);
}

sh_client *sh_connect(const sh_server *s, const char *token, agx_error *why)
{
    sh_client *sc = calloc(1, sizeof *sc);
    CHECK(sc);
    CHECK(uv_loop_init(&sc->loop) == 0);
    uv_timer_init(&sc->loop, &sc->timer);
    sc->timer.data = sc;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s->port);
    agx_sio_client_config cfg = {.url = url,
                                 .token = token,
                                 .connect_timeout_ms = 30000,
                                 .handlers = {.on_connect = on_connect,
                                              .on_event = on_event,
                                              .on_close = on_close,
                                              .ud = sc}};
    agx_error err;
    CHECK_OK(agx_sio_client_connect(&sc->loop, &cfg, &sc->cl, &err), &err);
    CHECK_MSG(run_until(sc, is_settled, 40000), "connect did not settle");
    if (!sc->connected || sc->closed) {
        if (why)
            agx_error_copy(why, &sc->why);
        loop_free(sc);
        return NULL;
    }
    return sc;
}

void sh_close(sh_client *c) { loop_free(c); }

bool sh_connected(sh_client *c)
{
    run_until(c, never, 20);
    return !c->closed;
}

void sh_emit_raw(sh_client *c, const char *event, const void *bytes, size_t len)
{
    CHECK_MSG(c->conn, "emit '%s' on a closed connection", event);
    struct iovec iov = {(void *)bytes, len};
    agx_error err;
    CHECK_OK(agx_sio_conn_emit(c->conn, event, NULL, bytes ? &iov : NULL, bytes ? 1 : 0, NULL, &err),
             &err);
    run_until(c, never, 0); /* let it go out */
}

void sh_emit_json(sh_client *c, const char *event, const char *json)
{
    agx_value *v = NULL;
    agx_error err;
    CHECK_OK(agx_value_from_json(json, strlen(json), NULL, &v, &err), &err);
    void *mp;
    size_t len;
    CHECK_OK(agx_value_to_msgpack(v, &mp, &len, &err), &err);
    sh_emit_raw(c, event, mp, len);
    free(mp);
    agx_value_free(v);
}

sh_event *sh_next(sh_client *c, int timeout_ms)
{
    if (!run_until(c, has_event, timeout_ms) || !c->head)
        return NULL;
    sh_event *e = c->head;
    c->head = e->next;
    if (!c->head)
        c->tail = NULL;
    e->next = NULL;
    return e;
}

sh_event *sh_expect(sh_client *c, const char *name, const char *call_id, int timeout_ms)
{
    sh_event *e = sh_next(c, timeout_ms);
    CHECK_MSG(e, "no '%s' for call '%s' within %d ms (connection %s)", name, call_id, timeout_ms,
              c->closed ? "closed" : "open");
    const char *cid = agx_value_get_string(sh_get(e, "call_id"), NULL);
    if (strcmp(e->name, name) != 0 || !cid || strcmp(cid, call_id) != 0) {
        char *json = NULL;
        agx_value_to_json(e->payload, &json, NULL);
        CHECK_MSG(0, "expected '%s' for call '%s', got '%s' %s", name, call_id, e->name,
                  json ? json : "(no payload)");
    }
    return e;
}

bool sh_quiet(sh_client *c, int ms)
{
    run_until(c, never, ms);
    return c->head == NULL;
}

void sh_pump(sh_client *c, int ms) { run_until(c, never, ms); }

static bool queue_empty(sh_client *sc) { return !sc->conn || agx_sio_conn_queued_bytes(sc->conn) == 0; }

void sh_flush(sh_client *c, int timeout_ms)
{
    CHECK_MSG(run_until(c, queue_empty, timeout_ms), "%zu bytes still queued after %d ms",
              c->conn ? agx_sio_conn_queued_bytes(c->conn) : (size_t)0, timeout_ms);
}

void sh_event_free(sh_event *e)
{
    if (!e)
        return;
    agx_value_free(e->payload);
    free(e);
}

const agx_value *sh_get(const sh_event *e, const char *key) { return agx_value_map_get(e->payload, key); }

const char *sh_error_type(const sh_event *e)
{
    return agx_value_get_string(agx_value_map_get(sh_get(e, "error"), "type"), NULL);
}

const char *sh_error_message(const sh_event *e)
{
    return agx_value_get_string(agx_value_map_get(sh_get(e, "error"), "message"), NULL);
}

bool sh_error_cancelled(const sh_event *e)
{
    return agx_value_get_bool(agx_value_map_get(sh_get(e, "error"), "cancelled"));
}

sh_event *sh_count_stream(sh_client *c, const char *call_id, uint32_t window, size_t *items,
                          size_t *bytes, int timeout_ms)
{
    c->counting = true;
    c->window = window < 2 ? 2 : window;
    c->uncredited = 0;
    c->items = c->bytes = 0;
    snprintf(c->count_cid, sizeof c->count_cid, "%s", call_id);
    /* Items that arrived while the request was being sent are already queued: count them too. */
    while (c->head && strcmp(c->head->name, "stream:item") == 0) {
        sh_event *q = c->head;
        const char *cid = agx_value_get_string(agx_value_map_get(q->payload, "call_id"), NULL);
        if (!cid || strcmp(cid, call_id) != 0)
            break;
        size_t len = 0;
        agx_value_get_binary(agx_value_map_get(q->payload, "value"), &len);
        c->items++;
        c->bytes += len;
        c->head = q->next;
        if (!c->head)
            c->tail = NULL;
        sh_event_free(q);
        if (++c->uncredited >= c->window / 2) {
            emit_credit(c, c->uncredited);
            c->uncredited = 0;
        }
    }
    sh_event *e = sh_next(c, timeout_ms);
    c->counting = false;
    *items = c->items;
    *bytes = c->bytes;
    return e;
}
