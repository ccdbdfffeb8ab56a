/* worker_proc.c — the runtime server's end of the worker: spawns agentix-worker with its stdin
 * and stdout on pipes (stderr inherited) and a scrubbed environment, reads its frames without
 * blocking and writes frames to it in batches (docs/PROTOCOL.md §4).
 *
 * Death is the case that matters: when the worker exits, is killed, closes its output or sends a
 * broken frame, every call routed to it fails at once with WorkerExited naming the exit code or
 * signal, and the next call spawns a fresh worker. A worker that dies while booting fails its
 * pending calls the same way, so nothing ever waits on a dead worker.
 *
 * The first worker is spawned when the server starts, so the first call does not pay for the
 * exec and its `ready` round trip, and a broken installation shows in the log at once. After a
 * death the next one is spawned by the next call, not at once: a module that kills its worker
 * cannot make the server spin in a restart loop.
 *
 * Supervision: a call the server cancelled (or whose host left) must end in the worker within the
 * cancel grace. One that does not — module code stuck in a blocking call that ignores its cancel —
 * would hold a worker thread for good; instead the worker is recycled: killed, its calls failed
 * with WorkerExited, the next call served by a fresh one. */
#include "runtime/server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/wire/rpc_error.h"

#define MSG_MAX 512
#define READS_PER_WAKEUP 1 /* epoll is level-triggered: more data wakes us again, without a read
                             * that only returns EAGAIN; other connections run in between */
#define BIG_BUFFER ((size_t)1 << 20) /* buffers above this are released once idle */

extern char **environ;

static void wp_lost(srv_wproc *wp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- handles and lifetime ---- */

static void wp_free(srv_wproc *wp)
{
    srv_server *s = wp->srv;
    for (srv_wproc **pp = &s->procs; *pp; pp = &(*pp)->next)
        if (*pp == wp) {
            *pp = wp->next;
            break;
        }
    agx_frame_reader_free(wp->reader);
    agx_ring_close(&wp->ring);
    agx_ring_close(&wp->in_ring);
    agx_buf_free(&wp->wactive);
    agx_buf_free(&wp->wpending);
    free(wp);
}

static void handle_closed(uv_handle_t *h)
{
    srv_wproc *wp = h->data;
    if (--wp->open_handles == 0)
        wp_free(wp);
}

static void close_handle(srv_wproc *wp, uv_handle_t *h)
{
    h->data = wp;
    uv_close(h, handle_closed);
}

/* Once the process has exited and its calls are settled, every handle goes. */
static void wp_close(srv_wproc *wp)
{
    if (wp->closing)
        return;
    wp->closing = true;
    close_handle(wp, (uv_handle_t *)&wp->proc);
    close_handle(wp, (uv_handle_t *)&wp->rpoll);
    close_handle(wp, (uv_handle_t *)&wp->wpipe);
    close_handle(wp, (uv_handle_t *)&wp->timer);
    close_handle(wp, (uv_handle_t *)&wp->grace);
    close_handle(wp, (uv_handle_t *)&wp->qwait);
    close(wp->rfd);
    wp->rfd = -1;
    /* Drain: once the last worker is gone, nothing below the server may be left running. */
    srv_server *s = wp->srv;
    if (s->draining && !srv_workers_running(s))
        srv_reap_all(s);
}

static void arm(srv_wproc *wp, int phase, uint64_t ms);

static void describe_exit(const srv_wproc *wp, char *buf, size_t len, int64_t status, int sig)
{
    const char *when = wp->state == WP_BOOTING ? " before it was ready" : "";
    if (sig)
        snprintf(buf, len, "agentix-worker (pid %llu) was killed by signal %d (%s)%s",
                 (unsigned long long)wp->pid, sig, strsignal(sig), when);
    else
        snprintf(buf, len, "agentix-worker (pid %llu) exited with code %lld%s",
                 (unsigned long long)wp->pid, (long long)status, when);
}

/* The worker is unusable: its calls fail now, new calls go to a fresh worker, and the process is
 * killed if it still runs (its handles close once it has exited). */
static void wp_lost(srv_wproc *wp, const char *fmt, ...)
{
    if (wp->state == WP_FAILED)
        return;
    srv_server *s = wp->srv;
    wp->state = WP_FAILED;
    if (s->current == wp)
        s->current = NULL;
    uv_poll_stop(&wp->rpoll);
    uv_timer_stop(&wp->timer);
    uv_timer_stop(&wp->grace);
    uv_timer_stop(&wp->qwait);
    wp->phase = WT_NONE;
    wp->wpending.len = 0;
    char why[MSG_MAX - 96], msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s; the next call starts a new worker", why);
    fprintf(stderr, "agentix-server: %s\n", msg);
    srv_fail_worker_calls(s, wp, msg);
    if (wp->exited)
        wp_close(wp);
    else
        uv_process_kill(&wp->proc, SIGKILL);
}

/* ---- reading frames ---- */

/* Frames from the worker may be somewhat larger than AGENTIX_MAX_PAYLOAD (a value right at the
 * limit plus the frame's keys, or a module's oversized result): such a frame then fails only its
 * own call (the host event cannot carry it: LimitExceeded) instead of ending the stream for all. */
static size_t reader_limit(const srv_server *s)
{
    return s->cfg.max_payload > SIZE_MAX / 2 ? SIZE_MAX : 2 * s->cfg.max_payload;
}

static void on_ready(srv_wproc *wp, const agx_frame *f)
{
    if (wp->state != WP_BOOTING)
        return;
    wp->state = WP_READY;
    uv_timer_stop(&wp->timer);
    wp->phase = WT_NONE;
    const char *pidfile = wp->srv->cfg.worker_pid_file;
    if (pidfile) {
        char text[32];
        snprintf(text, sizeof text, "%llu\n", (unsigned long long)f->pid);
        if (srv_write_file_atomic(pidfile, text) != 0)
            fprintf(stderr, "agentix-server: cannot write AGENTIX_WORKER_PID_FILE '%s': %s\n",
                    pidfile, strerror(errno));
    }
}

/* An item whose value is in the bulk ring: the reference must be the next one (ring.h) — the
 * worker is broken or hostile otherwise, and is given up. */
static bool ring_item(srv_wproc *wp, agx_frame *f)
{
    agx_error err;
    if (agx_ring_accept(&wp->ring, f->ring_at, f->ring_len, &err) != 0) {
        wp_lost(wp, "agentix-worker (pid %llu) sent a broken frame: %s",
                (unsigned long long)wp->pid, err.message);
        return false;
    }
    f->ring_bytes = agx_ring_data(&wp->ring, f->ring_at);
    return true;
}

/* Hands out every complete frame read so far; false once the worker has been given up. */
static bool drain_frames(srv_wproc *wp)
{
    agx_frame f;
    agx_error err;
    int rc;
    while ((rc = agx_frame_reader_next(wp->reader, &f, &err)) != 0) {
        if (rc < 0) {
            wp_lost(wp, "agentix-worker (pid %llu) sent a broken frame: %s",
                    (unsigned long long)wp->pid, err.message);
            return false;
        }
        if (f.body_len > BIG_BUFFER)
            wp->big_frames = true;
        switch (f.type) {
        case AGX_FRAME_READY: on_ready(wp, &f); break;
        case AGX_FRAME_BOOT_ERROR: {
            agx_error be;
            agx_rpc_error_from_msgpack(f.error, &be);
            wp_lost(wp, "agentix-worker failed to start: %s", be.message);
            return false;
        }
        case AGX_FRAME_ITEM:
            if (f.in_ring && !ring_item(wp, &f))
                return false;
            srv_route_worker_frame(wp->srv, wp, &f);
            if (f.in_ring) /* relayed or copied into a send queue by now: the bytes are free */
                agx_ring_release(&wp->ring);
            break;
        case AGX_FRAME_RESULT:
        case AGX_FRAME_ERROR:
        case AGX_FRAME_END:
        case AGX_FRAME_IN_CREDIT:
        case AGX_FRAME_DESCRIPTION: srv_route_worker_frame(wp->srv, wp, &f); break;
        default:
            wp_lost(wp, "agentix-worker (pid %llu) sent a '%s' frame, which only the server sends",
                    (unsigned long long)wp->pid, agx_frame_type_name(f.type));
            return false;
        }
        if (wp->state == WP_FAILED)
            return false;
    }
    /* A buffer grown for one huge frame is not kept for the worker's lifetime. */
    if (wp->big_frames && agx_frame_reader_pending(wp->reader) == 0) {
        agx_frame_reader *fresh = agx_frame_reader_new(reader_limit(wp->srv));
        if (fresh) {
            agx_frame_reader_free(wp->reader);
            wp->reader = fresh;
            wp->big_frames = false;
        }
    }
    return true;
}

/* The pipe hit EOF: the worker died or closed its output. Its exit status names the cause; it is
 * usually known already (the kernel closes the pipe as the process exits), else it is waited for
 * briefly. */
static void on_eof(srv_wproc *wp)
{
    wp->eof = true;
    uv_poll_stop(&wp->rpoll);
    if (agx_frame_reader_pending(wp->reader) > 0) {
        wp_lost(wp, "agentix-worker (pid %llu) stopped in the middle of a frame",
                (unsigned long long)wp->pid);
        return;
    }
    if (wp->exited || wp->state == WP_FAILED || wp->state == WP_STOPPING)
        return;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)wp->proc.pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid) {
        char msg[MSG_MAX];
        describe_exit(wp, msg, sizeof msg, si.si_code == CLD_EXITED ? si.si_status : 0,
                      si.si_code == CLD_EXITED ? 0 : si.si_status);
        wp_lost(wp, "%s", msg);
        return;
    }
    arm(wp, WT_EOF, SRV_EXIT_GRACE_MS);
}

typedef enum { READ_MORE, READ_IDLE, READ_DONE } read_state;

/* Reads up to max_reads times: READ_MORE when there may be more, READ_IDLE when the pipe is empty
 * for now, READ_DONE when the worker's output ended or it was given up. */
static read_state read_some(srv_wproc *wp, int max_reads)
{
    for (int i = 0; i < max_reads; i++) {
        agx_error err;
        long n = agx_frame_reader_read_fd(wp->reader, wp->rfd, &err);
        int e = errno;
        if (n == 0) {
            on_eof(wp);
            return READ_DONE;
        }
        if (n < 0) {
            if (n == AGX_ERR_IO && (e == EAGAIN || e == EWOULDBLOCK))
                return READ_IDLE;
            wp_lost(wp, "reading from agentix-worker (pid %llu): %s",
                    (unsigned long long)wp->pid, err.message);
            return READ_DONE;
        }
        if (!drain_frames(wp))
            return READ_DONE;
    }
    return READ_MORE;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    srv_wproc *wp = h->data;
    (void)events;
    if (status < 0) {
        wp_lost(wp, "polling agentix-worker's output: %s", uv_strerror(status));
        return;
    }
    /* A read brings many answers under load: send each connection's share together. */
    agx_sio_cork();
    read_some(wp, READS_PER_WAKEUP);
    agx_sio_uncork();
}

static void on_worker_exit(uv_process_t *p, int64_t status, int sig)
{
    srv_wproc *wp = p->data;
    wp->exited = true;
    wp->exit_status = status;
    wp->term_signal = sig;
    if (wp->state == WP_STOPPING) {
        /* The drain ended its calls already; none may outlive the process that ran them. */
        wp->state = WP_FAILED;
        uv_timer_stop(&wp->timer);
        srv_fail_worker_calls(wp->srv, wp, "agentix-worker stopped: agentix-server is shutting down");
    }
    if (wp->state != WP_FAILED) {
        /* What the worker wrote before it died is in the pipe: those answers still count. */
        if (!wp->eof)
            while (read_some(wp, 64) == READ_MORE)
                ;
        char msg[MSG_MAX];
        describe_exit(wp, msg, sizeof msg, status, sig);
        wp_lost(wp, "%s", msg);
    }
    wp_close(wp);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t)
{
    srv_wproc *wp = t->data;
    int phase = wp->phase;
    wp->phase = WT_NONE;
    switch (phase) {
    case WT_BOOT:
        wp_lost(wp, "agentix-worker (pid %llu) did not report ready within %u ms",
                (unsigned long long)wp->pid, wp->srv->cfg.boot_timeout_ms);
        break;
    case WT_EOF:
        wp_lost(wp, "agentix-worker (pid %llu) closed its output pipe", (unsigned long long)wp->pid);
        break;
    case WT_TERM:
        fprintf(stderr, "agentix-server: agentix-worker did not stop within %d s; sending SIGTERM\n",
                SRV_SHUTDOWN_WAIT_MS / 1000);
        uv_process_kill(&wp->proc, SIGTERM);
        arm(wp, WT_KILL, SRV_TERM_WAIT_MS);
        break;
    case WT_KILL:
        fprintf(stderr, "agentix-server: agentix-worker ignored SIGTERM; sending SIGKILL\n");
        uv_process_kill(&wp->proc, SIGKILL);
        break;
    default: break;
    }
}

static void arm(srv_wproc *wp, int phase, uint64_t ms)
{
    wp->phase = phase;
    wp->timer.data = wp;
    uv_timer_start(&wp->timer, on_timer, ms, 0);
}

/* ---- supervision of cancelled calls ---- */

static void grace_fired(uv_timer_t *t);

static void grace_arm(srv_wproc *wp)
{
    if (!wp->grace_head || wp->state == WP_FAILED) {
        uv_timer_stop(&wp->grace);
        return;
    }
    uint64_t now = uv_now(wp->srv->loop), due = wp->grace_head->deadline;
    wp->grace.data = wp;
    uv_timer_start(&wp->grace, grace_fired, due > now ? due - now : 0, 0);
}

static void grace_fired(uv_timer_t *t)
{
    srv_wproc *wp = t->data;
    srv_call *c = wp->grace_head;
    if (!c || wp->state == WP_FAILED)
        return;
    if (c->deadline > uv_now(wp->srv->loop)) {
        grace_arm(wp);
        return;
    }
    wp_lost(wp, "agentix-worker (pid %llu) was recycled: call %llu did not end within %u ms of "
            "its cancel (module code that ignores cancellation)",
            (unsigned long long)wp->pid, (unsigned long long)c->id, wp->srv->cfg.cancel_grace_ms);
}

void srv_worker_watch(srv_wproc *wp, srv_call *call)
{
    call->deadline = uv_now(wp->srv->loop) + wp->srv->cfg.cancel_grace_ms;
    call->gr_next = NULL;
    if (wp->grace_tail)
        wp->grace_tail->gr_next = call;
    else
        wp->grace_head = call;
    wp->grace_tail = call;
    if (wp->grace_head == call)
        grace_arm(wp);
}

void srv_worker_unwatch(srv_wproc *wp, srv_call *call)
{
    srv_call *prev = NULL;
    for (srv_call *c = wp->grace_head; c; prev = c, c = c->gr_next) {
        if (c != call)
            continue;
        if (prev)
            prev->gr_next = c->gr_next;
        else
            wp->grace_head = c->gr_next;
        if (wp->grace_tail == c)
            wp->grace_tail = prev;
        if (!prev)
            grace_arm(wp);
        return;
    }
}

static void qwait_fired(uv_timer_t *t) { srv_queue_expire(t->data); }

void srv_worker_queue_arm(srv_wproc *wp)
{
    if (!wp->queue_head || wp->closing) {
        if (!wp->closing)
            uv_timer_stop(&wp->qwait);
        return;
    }
    uint64_t now = uv_now(wp->srv->loop), due = wp->queue_head->queued_at + wp->srv->cfg.queue_wait_ms;
    wp->qwait.data = wp;
    uv_timer_start(&wp->qwait, qwait_fired, due > now ? due - now : 0, 0);
}

bool srv_workers_running(const srv_server *s)
{
    for (const srv_wproc *wp = s->procs; wp; wp = wp->next)
        if (!wp->exited)
            return true;
    return false;
}

/* ---- writing frames ---- */

static void flush_one(srv_wproc *wp);

static void on_written(uv_write_t *req, int status)
{
    srv_wproc *wp = req->data;
    wp->writing = false;
    wp->wactive.len = 0;
    if (wp->wactive.cap > BIG_BUFFER) {
        agx_buf_free(&wp->wactive);
        memset(&wp->wactive, 0, sizeof wp->wactive);
    }
    if (status < 0) {
        /* EPIPE: the worker is gone; its exit reports it. ECANCELED: the pipe is closing. */
        wp->wpending.len = 0;
        return;
    }
    flush_one(wp);
}

static void flush_one(srv_wproc *wp)
{
    if (wp->writing || wp->closing || wp->wpending.len == 0)
        return;
    agx_buf t = wp->wactive;
    wp->wactive = wp->wpending;
    wp->wpending = t;
    wp->wpending.len = 0;
    uv_buf_t b = uv_buf_init(wp->wactive.data, (unsigned)wp->wactive.len);
    wp->wreq.data = wp;
    int rc = uv_write(&wp->wreq, (uv_stream_t *)&wp->wpipe, &b, 1, on_written);
    if (rc) {
        wp->wactive.len = 0;
        if (wp->state != WP_FAILED)
            wp_lost(wp, "writing to agentix-worker (pid %llu): %s", (unsigned long long)wp->pid,
                    uv_strerror(rc));
        return;
    }
    wp->writing = true;
}

static void on_check(uv_check_t *h)
{
    srv_server *s = h->data;
    for (srv_wproc *wp = s->procs; wp; wp = wp->next)
        flush_one(wp);
}

int srv_worker_flush_init(srv_server *s)
{
    s->flush.data = s;
    if (uv_check_init(s->loop, &s->flush) || uv_check_start(&s->flush, on_check))
        return -1;
    uv_unref((uv_handle_t *)&s->flush); /* it never keeps the loop alive by itself */
    return 0;
}

static void flush_closed(uv_handle_t *h) { (void)h; }

void srv_worker_flush_close(srv_server *s) { uv_close((uv_handle_t *)&s->flush, flush_closed); }

agx_buf *srv_worker_buf(srv_wproc *wp)
{
    return wp && (wp->state == WP_BOOTING || wp->state == WP_READY) ? &wp->wpending : NULL;
}

size_t srv_worker_backlog(const srv_wproc *wp) { return wp->wactive.len + wp->wpending.len; }

/* ---- spawning ---- */

static const char *const scrubbed[] = {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT",
                                       "AGENTIX_TOKEN", "AGENTIX_TOKEN_FD", "AGENTIX_AUTH",
                                       "AGENTIX_CLAIM_SECRET", "AGENTIX_CLAIM_SECRET_FD",
                                       "AGENTIX_MODULE_PATH", "AGENTIX_MAX_PAYLOAD",
                                       "AGENTIX_WORKER_THREADS", "AGENTIX_WORKER_PID_FILE",
                                       "AGENTIX_PORT_FILE", "AGENTIX_LISTEN"};

static bool is_scrubbed(const char *kv)
{
    for (size_t i = 0; i < sizeof scrubbed / sizeof *scrubbed; i++) {
        size_t n = strlen(scrubbed[i]);
        if (strncmp(kv, scrubbed[i], n) == 0 && kv[n] == '=')
            return true;
    }
    return false;
}

static char *kv_dup(const char *k, const char *v)
{
    size_t n = strlen(k) + strlen(v) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s=%s", k, v);
    return s;
}

/* User code runs in the worker: it must not see the token, nor be steered by loader variables
 * meant for the server. The module path and payload limit are the server's. */
int srv_worker_env_init(srv_server *s)
{
    size_t n = 0;
    for (char **e = environ; *e; e++)
        n++;
    char **env = calloc(n + 4, sizeof *env);
    if (!env)
        return -1;
    size_t k = 0;
    for (char **e = environ; *e; e++)
        if (!is_scrubbed(*e) && !(env[k++] = strdup(*e)))
            goto oom;
    char payload[32], threads[16];
    snprintf(payload, sizeof payload, "%zu", s->cfg.max_payload);
    snprintf(threads, sizeof threads, "%u", s->cfg.worker_threads);
    if (!(env[k++] = kv_dup("AGENTIX_MODULE_PATH", s->cfg.module_path)) ||
        !(env[k++] = kv_dup("AGENTIX_MAX_PAYLOAD", payload)) ||
        !(env[k++] = kv_dup("AGENTIX_WORKER_THREADS", threads)))
        goto oom;
    s->worker_env = env;
    return 0;
oom:
    for (size_t i = 0; i < k; i++)
        free(env[i]);
    free(env);
    return -1;
}

void srv_worker_env_free(srv_server *s)
{
    if (!s->worker_env)
        return;
    for (char **e = s->worker_env; *e; e++)
        free(*e);
    free(s->worker_env);
    s->worker_env = NULL;
}

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0)
            close(p[i]);
}

static void proc_failed_closed(uv_handle_t *h) { free(h->data); }

/* After the spawn the worker has its own ring descriptor; the mapping is all the server needs. */
static void ring_keep_map_only(agx_ring *r)
{
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
}

static srv_wproc *spawn(srv_server *s, char *msg, size_t len)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    srv_wproc *wp = calloc(1, sizeof *wp);
    if (wp)
        wp->ring.fd = wp->in_ring.fd = -1; /* no rings yet (0 would be stdin) */
    if (!wp || pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) ||
        !(wp->reader = agx_frame_reader_new(reader_limit(s)))) {
        snprintf(msg, len, "cannot start agentix-worker: %s", wp ? strerror(errno) : "out of memory");
        if (wp)
            agx_frame_reader_free(wp->reader);
        free(wp);
        close_pair(in);
        close_pair(out);
        return NULL;
    }
    /* Larger pipes: a 64 KiB item then moves in one write and one read. Best effort. */
    (void)fcntl(in[1], F_SETPIPE_SZ, SRV_PIPE_SIZE);
    (void)fcntl(out[0], F_SETPIPE_SZ, SRV_PIPE_SIZE);
    /* The bulk rings (ring.h), when the worker budget affords them (a quarter at most); without
     * them (or if they cannot be made) large payloads take the pipes. */
    if (s->cfg.worker_budget >= 8 * AGX_RING_SIZE &&
        (agx_ring_create(&wp->ring, AGX_RING_SIZE) != 0 ||
         agx_ring_create(&wp->in_ring, AGX_RING_SIZE) != 0)) {
        fprintf(stderr, "agentix-server: no bulk rings for the worker (%s); payloads take the "
                "pipes\n", strerror(errno));
        agx_ring_close(&wp->ring);
        agx_ring_close(&wp->in_ring);
    }
    char *args[] = {s->cfg.worker_path, NULL};
    uv_stdio_container_t stdio[5] = {
        {.flags = UV_INHERIT_FD, .data.fd = in[0]},
        {.flags = UV_INHERIT_FD, .data.fd = out[1]},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
        {.flags = wp->ring.map ? UV_INHERIT_FD : UV_IGNORE, .data.fd = wp->ring.fd},
        {.flags = wp->in_ring.map ? UV_INHERIT_FD : UV_IGNORE, .data.fd = wp->in_ring.fd},
    };
    _Static_assert(AGX_RING_FD == 3 && AGX_RING_IN_FD == 4, "the rings follow stdin/out/err");
    uv_process_options_t o = {.exit_cb = on_worker_exit, .file = s->cfg.worker_path, .args = args,
                              .env = s->worker_env, .stdio_count = 5, .stdio = stdio};
    wp->srv = s;
    wp->proc.data = wp;
    int rc = uv_spawn(s->loop, &wp->proc, &o);
    close(in[0]);
    close(out[1]);
    ring_keep_map_only(&wp->ring);
    ring_keep_map_only(&wp->in_ring);
    if (rc) {
        snprintf(msg, len, "cannot start agentix-worker '%s': %s", s->cfg.worker_path,
                 uv_strerror(rc));
        close(in[1]);
        close(out[0]);
        agx_frame_reader_free(wp->reader);
        agx_ring_close(&wp->ring);
        agx_ring_close(&wp->in_ring);
        wp->proc.data = wp;
        uv_close((uv_handle_t *)&wp->proc, proc_failed_closed);
        return NULL;
    }
    wp->pid = (uint64_t)wp->proc.pid;
    wp->rfd = out[0];
    (void)fcntl(wp->rfd, F_SETFL, fcntl(wp->rfd, F_GETFL) | O_NONBLOCK);
    uv_poll_init(s->loop, &wp->rpoll, wp->rfd);
    uv_pipe_init(s->loop, &wp->wpipe, 0);
    uv_pipe_open(&wp->wpipe, in[1]);
    uv_timer_init(s->loop, &wp->timer);
    uv_timer_init(s->loop, &wp->grace);
    uv_timer_init(s->loop, &wp->qwait);
    wp->open_handles = 6;
    wp->rpoll.data = wp;
    uv_poll_start(&wp->rpoll, UV_READABLE, on_readable);
    arm(wp, WT_BOOT, s->cfg.boot_timeout_ms);
    wp->state = WP_BOOTING;
    wp->next = s->procs;
    s->procs = wp;
    return wp;
}

srv_wproc *srv_worker_get(srv_server *s, char *msg, size_t len)
{
    if (s->current)
        return s->current;
    if (s->draining) {
        snprintf(msg, len, "agentix-server is shutting down");
        return NULL;
    }
    return s->current = spawn(s, msg, len);
}

/* ---- drain ---- */

void srv_worker_shutdown_all(srv_server *s)
{
    s->current = NULL;
    for (srv_wproc *wp = s->procs; wp; wp = wp->next) {
        if (wp->state != WP_BOOTING && wp->state != WP_READY)
            continue;
        if (agx_frame_write_shutdown(&wp->wpending) != 0) {
            uv_process_kill(&wp->proc, SIGTERM);
            arm(wp, WT_KILL, SRV_TERM_WAIT_MS);
        } else {
            arm(wp, WT_TERM, SRV_SHUTDOWN_WAIT_MS);
        }
        flush_one(wp);
        wp->state = WP_STOPPING;
    }
}
