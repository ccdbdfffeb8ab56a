/* wkharness.c — the worker driver the worker and module tests share (see wkharness.h). */
#include "wkharness.h"

#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int64_t wkh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* environ minus AGENTIX_MODULE_PATH, plus the given entries. */
static char **build_env(const char *module_path, const char *const *extra, char *mp_buf, size_t mp_len)
{
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (extra && extra[m])
        m++;
    char **env = calloc(n + m + 2, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "AGENTIX_MODULE_PATH=", 20) != 0)
            env[k++] = environ[i];
    if (module_path) {
        snprintf(mp_buf, mp_len, "AGENTIX_MODULE_PATH=%s", module_path);
        env[k++] = mp_buf;
    }
    for (size_t i = 0; i < m; i++)
        env[k++] = (char *)extra[i];
    return env;
}

static wkh *start(const char *const *argv, const char *module_path, const char *const *extra_env,
                  bool ring)
{
    wkh *h = calloc(1, sizeof *h);
    int in[2], out[2];
    CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
    h->ring.fd = h->in_ring.fd = -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (ring) {
        CHECK_MSG(agx_ring_create(&h->ring, AGX_RING_SIZE) == 0 &&
                      agx_ring_create(&h->in_ring, AGX_RING_SIZE) == 0, "ring: %s", strerror(errno));
        /* dup2 onto itself would keep close-on-exec */
        CHECK(h->ring.fd > AGX_RING_IN_FD && h->in_ring.fd > AGX_RING_IN_FD);
        posix_spawn_file_actions_adddup2(&fa, h->ring.fd, AGX_RING_FD);
        posix_spawn_file_actions_adddup2(&fa, h->in_ring.fd, AGX_RING_IN_FD);
        (void)fcntl(in[1], F_SETPIPE_SZ, 1 << 20);
        (void)fcntl(out[0], F_SETPIPE_SZ, 1 << 20);
    }
    char mp[4096];
    char **env = build_env(module_path, extra_env, mp, sizeof mp);
    int rc = posix_spawn(&h->pid, argv[0], &fa, NULL, (char *const *)argv, env);
    CHECK_MSG(rc == 0, "spawning %s: %s", argv[0], strerror(rc));
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(in[0]);
    close(out[1]);
    h->to_fd = in[1];
    h->from_fd = out[0];
    h->reader = agx_frame_reader_new(0);
    agx_value *ready = wkh_expect(h, 0, "ready", 60000);
    CHECK(agx_value_get_int64(agx_value_map_get(ready, "pid")) == h->pid);
    agx_value_free(ready);
    return h;
}

wkh *wkh_start(const char *const *argv, const char *module_path, const char *const *extra_env)
{
    return start(argv, module_path, extra_env, false);
}

wkh *wkh_start_ring(const char *const *argv, const char *module_path, const char *const *extra_env)
{
    return start(argv, module_path, extra_env, true);
}

void wkh_ring_release(wkh *h) { agx_ring_release(&h->ring); }

/* As the server takes a ring item: the reference checked, the bytes then the frame's value. */
static void take_ring_item(wkh *h, const agx_frame *fr, agx_value *v)
{
    agx_error err;
    CHECK_OK(agx_ring_accept(&h->ring, fr->ring_at, fr->ring_len, &err), &err);
    agx_value_map_set(v, "value", agx_value_binary(agx_ring_data(&h->ring, fr->ring_at),
                                                   (size_t)fr->ring_len));
    h->ring_items++;
    if (!h->ring_hold)
        agx_ring_release(&h->ring);
}

static void wkh_free(wkh *h)
{
    for (size_t i = 0; i < h->n_stash; i++)
        agx_value_free(h->stash[i]);
    if (h->to_fd >= 0)
        close(h->to_fd);
    close(h->from_fd);
    agx_frame_reader_free(h->reader);
    agx_ring_close(&h->ring);
    agx_ring_close(&h->in_ring);
    free(h);
}

int wkh_wait_exit(wkh *h, int timeout_ms)
{
    int64_t deadline = wkh_now_ms() + timeout_ms;
    int status = -1;
    for (;;) {
        pid_t p = waitpid(h->pid, &status, WNOHANG);
        if (p == h->pid)
            break;
        if (wkh_now_ms() > deadline) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, NULL, 0);
            status = -1;
            break;
        }
        /* Keep draining its stdout so a chatty worker never blocks on a full pipe. */
        char buf[65536];
        struct pollfd pfd = {.fd = h->from_fd, .events = POLLIN};
        if (poll(&pfd, 1, 20) > 0 && read(h->from_fd, buf, sizeof buf) < 0)
            break;
    }
    wkh_free(h);
    return status;
}

int wkh_finish(wkh *h, int timeout_ms)
{
    close(h->to_fd);
    h->to_fd = -1;
    return wkh_wait_exit(h, timeout_ms);
}

void wkh_send_raw(wkh *h, const agx_buf *frames)
{
    agx_error err;
    CHECK_OK(agx_frame_send_all(h->to_fd, frames->data, frames->len, &err), &err);
}

static agx_mp_span pack_span(agx_value *v, agx_buf *b)
{
    agx_error err;
    if (!v)
        return (agx_mp_span){0};
    CHECK_OK(agx_value_pack_into(v, b, &err), &err);
    agx_value_free(v);
    return (agx_mp_span){(const unsigned char *)b->data, b->len};
}

void wkh_call(wkh *h, uint64_t id, const char *target, agx_shape shape, agx_value *args,
              agx_value *kwargs, uint32_t window)
{
    agx_buf a = {0}, k = {0}, f = {0};
    agx_mp_span as = pack_span(args, &a), ks = pack_span(kwargs, &k);
    CHECK(agx_frame_write_call(&f, id, target, strlen(target), shape, as, ks, window) == 0);
    wkh_send_raw(h, &f);
    agx_buf_free(&a);
    agx_buf_free(&k);
    agx_buf_free(&f);
}

void wkh_simple(wkh *h, agx_frame_type type, uint64_t id)
{
    agx_buf f = {0};
    CHECK((type == AGX_FRAME_SHUTDOWN ? agx_frame_write_shutdown(&f) : agx_frame_write_id(&f, type, id)) == 0);
    wkh_send_raw(h, &f);
    agx_buf_free(&f);
}

void wkh_credit(wkh *h, uint64_t id, uint64_t n)
{
    agx_buf f = {0};
    CHECK(agx_frame_write_credit(&f, AGX_FRAME_CREDIT, id, n) == 0);
    wkh_send_raw(h, &f);
    agx_buf_free(&f);
}

void wkh_in(wkh *h, uint64_t id, agx_value *item)
{
    agx_buf f = {0}, mp = {0};
    agx_error err;
    uint64_t at;
    CHECK_OK(agx_value_pack_into(item, &mp, &err), &err);
    if (mp.len >= AGX_RING_MIN_ITEM && agx_ring_place(&h->in_ring, mp.len, &at)) {
        memcpy(agx_ring_data(&h->in_ring, at), mp.data, mp.len);
        CHECK(agx_frame_write_ring(&f, AGX_FRAME_IN, id, at, mp.len) == 0);
        h->in_ring_items++;
    } else {
        CHECK_OK(agx_frame_write_value(&f, AGX_FRAME_IN, id, item, &err), &err);
    }
    agx_buf_free(&mp);
    agx_value_free(item);
    wkh_send_raw(h, &f);
    agx_buf_free(&f);
}

void wkh_describe(wkh *h, uint64_t id, const char *target)
{
    agx_buf f = {0};
    CHECK(agx_frame_write_describe(&f, id, target, strlen(target)) == 0);
    wkh_send_raw(h, &f);
    agx_buf_free(&f);
}

const char *wkh_frame_type(const agx_value *frame)
{
    return agx_value_get_string(agx_value_map_get(frame, "type"), NULL);
}

/* Frames without an id (ready) match id 0. */
static bool frame_is_for(const agx_value *f, uint64_t id)
{
    const agx_value *v = agx_value_map_get(f, "id");
    return v ? (uint64_t)agx_value_get_int64(v) == id : id == 0;
}

static agx_value *take_stashed(wkh *h, uint64_t id)
{
    for (size_t i = 0; i < h->n_stash; i++)
        if (frame_is_for(h->stash[i], id)) {
            agx_value *f = h->stash[i];
            memmove(&h->stash[i], &h->stash[i + 1], (h->n_stash - i - 1) * sizeof *h->stash);
            h->n_stash--;
            return f;
        }
    return NULL;
}

agx_value *wkh_next(wkh *h, uint64_t id, int timeout_ms)
{
    agx_value *f = take_stashed(h, id);
    if (f)
        return f;
    int64_t deadline = wkh_now_ms() + timeout_ms;
    agx_error err;
    for (;;) {
        agx_frame fr;
        int rc;
        while ((rc = agx_frame_reader_next(h->reader, &fr, &err)) == 1) {
            agx_value *v = NULL;
            CHECK_OK(agx_value_from_msgpack(fr.body, fr.body_len, NULL, &v, &err), &err);
            if (fr.in_ring)
                take_ring_item(h, &fr, v);
            if (frame_is_for(v, id))
                return v;
            CHECK(h->n_stash < AGX_ARRAY_LEN(h->stash));
            h->stash[h->n_stash++] = v;
        }
        CHECK_OK(rc, &err);
        int64_t left = deadline - wkh_now_ms();
        if (left <= 0 || h->eof)
            return NULL;
        struct pollfd pfd = {.fd = h->from_fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return NULL;
        long n = agx_frame_reader_read_fd(h->reader, h->from_fd, &err);
        CHECK_MSG(n >= 0, "%s", err.message);
        if (n == 0)
            h->eof = true;
    }
}

agx_value *wkh_next_data(wkh *h, uint64_t id, int timeout_ms, uint64_t *credits)
{
    for (;;) {
        agx_value *f = wkh_next(h, id, timeout_ms);
        if (!f || strcmp(wkh_frame_type(f), "in_credit") != 0)
            return f;
        if (credits)
            *credits += (uint64_t)agx_value_get_int64(agx_value_map_get(f, "n"));
        agx_value_free(f);
    }
}

agx_value *wkh_expect(wkh *h, uint64_t id, const char *type, int timeout_ms)
{
    agx_value *f = strcmp(type, "in_credit") == 0 ? wkh_next(h, id, timeout_ms)
                                                  : wkh_next_data(h, id, timeout_ms, NULL);
    CHECK_MSG(f != NULL, "no frame for call %llu (wanted %s) within %d ms", (unsigned long long)id,
              type, timeout_ms);
    if (strcmp(wkh_frame_type(f), type) != 0) {
        char *json = NULL;
        agx_value_to_json(f, &json, NULL);
        CHECK_MSG(0, "call %llu: wanted a %s frame, got %s", (unsigned long long)id, type, json);
    }
    return f;
}

void wkh_expect_error(wkh *h, uint64_t id, const char *type, const char *message_part, bool cancelled)
{
    agx_value *f = wkh_expect(h, id, "error", 30000);
    const agx_value *e = agx_value_map_get(f, "error");
    const char *got_type = agx_value_get_string(agx_value_map_get(e, "type"), NULL);
    const char *msg = agx_value_get_string(agx_value_map_get(e, "message"), NULL);
    fprintf(stderr, "   call %llu: %s: %s\n", (unsigned long long)id, got_type, msg);
    CHECK_STREQ(got_type, type);
    if (message_part)
        CHECK_CONTAINS(msg, message_part);
    CHECK(agx_value_get_bool(agx_value_map_get(e, "cancelled")) == cancelled);
    agx_value_free(f);
}

agx_value *wkh_unary(wkh *h, uint64_t id, const char *target, agx_value *args, agx_value *kwargs)
{
    wkh_call(h, id, target, AGX_SHAPE_UNARY, args, kwargs, 0);
    agx_value *f = wkh_expect(h, id, "result", 30000);
    agx_value *v = agx_value_map_take(f, "value");
    agx_value_free(f);
    return v;
}

agx_value *wkh_args(int n, ...)
{
    agx_value *a = agx_value_array();
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        agx_value_array_push(a, va_arg(ap, agx_value *));
    va_end(ap);
    return a;
}

agx_value *wkh_kwargs(int n, ...)
{
    agx_value *m = agx_value_map();
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *k = va_arg(ap, const char *);
        agx_value_map_set(m, k, va_arg(ap, agx_value *));
    }
    va_end(ap);
    return m;
}
