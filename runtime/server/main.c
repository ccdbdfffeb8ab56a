/* main.c — agentix-server, the runtime server a backend starts in each sandbox: it listens for
 * hosts (Socket.IO over websocket, runtime/transport), checks their token (token.c), and runs
 * their calls in an agentix-worker subprocess (calls.c, worker_proc.c). Configured by environment
 * variables (config.c, docs/PROTOCOL.md §1). It is not dumpable (same-uid code without
 * CAP_SYS_PTRACE cannot read its memory or environment) and is the subreaper of everything below
 * it (reap.c). SIGTERM or SIGINT drains it: new calls are refused, calls in flight end with
 * Cancelled, the worker is shut down, whatever still runs below the server is killed,
 * connections close, and it exits 0. */
#include "runtime/server/server.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/version.h"
#include "runtime/transport/sio_listen.h"

#define QUEUE_RESERVE ((size_t)1 << 20) /* room kept for terminal events past the item cap */
/* Text messages carry only Socket.IO packet headers and the CONNECT (values travel as binary
 * attachments): anything larger is refused before jansson builds a tree from it. */
#define MAX_TEXT ((size_t)64 << 10)

static const char usage[] =
    "usage: agentix-server [--help | --version]\n"
    "\n"
    "The agentix runtime server: serves Socket.IO RPC from agentix hosts and runs the calls in an\n"
    "agentix-worker subprocess. Configured by the environment:\n"
    "  AGENTIX_BIND_HOST         address to listen on (default 0.0.0.0)\n"
    "  AGENTIX_BIND_PORT         TCP port (default 8000; 0 picks a free one)\n"
    "  AGENTIX_PORT_FILE         write the bound port here once listening\n"
    "  AGENTIX_LISTEN            unix:<path>: listen on that Unix socket instead of TCP\n"
    "  AGENTIX_TOKEN_FD          read the token hosts must send in their CONNECT from this fd\n"
    "  AGENTIX_TOKEN             the token itself (removed from the environment at start)\n"
    "  AGENTIX_AUTH              on (default: refuse to start without a token), claim, none\n"
    "  AGENTIX_CANCEL_GRACE_MS   a cancelled call must end within this, or its worker is recycled\n"
    "  AGENTIX_WORKER_BOOT_MS    a new worker must report ready within this (default 60000)\n"
    "  AGENTIX_WORKER_THREADS    calls one worker runs at once (default 1024); more wait\n"
    "  AGENTIX_QUEUE_WAIT_MS     a call waits this long for a worker thread (default 60000)\n"
    "  AGENTIX_QUEUE_BUDGET      bytes queued to all hosts together (default 4 x max payload)\n"
    "  AGENTIX_RECV_BUDGET       bytes of messages received in part from all hosts (default 4 x max payload)\n"
    "  AGENTIX_WORKER_BUDGET     bytes of calls in flight in the worker (default 2 x max payload)\n"
    "  AGENTIX_PING_INTERVAL_MS  heartbeat interval (default 25000)\n"
    "  AGENTIX_PING_TIMEOUT_MS   heartbeat timeout (default 20000)\n"
    "  AGENTIX_MAX_PAYLOAD       largest message / worker frame in bytes (default 67108864)\n"
    "  AGENTIX_WORKER            agentix-worker to run (default: beside this executable)\n"
    "  AGENTIX_MODULE_PATH       module folders for the worker (built-ins are appended)\n"
    "  AGENTIX_WORKER_PID_FILE   write the current worker's pid here whenever one starts\n"
    "  AGENTIX_EXPIRY_MS         end (drain) this long after the start unless extended\n"
    "                            (POST /expiry, the expiry event); unset = never\n"
    "  AGENTIX_K8S_SELF_DELETE   1: in a claimed k8s-pool pod, delete the pod at expiry\n"
    "                            (AGENTIX_POD_NAME/_NAMESPACE/_UID, KUBERNETES_SERVICE_HOST/_PORT,\n"
    "                            AGENTIX_K8S_TOKEN_FILE, AGENTIX_K8S_CA_FILE; docs/K8S.md)\n"
    "See docs/PROTOCOL.md.\n";

static bool authorize(const json_t *auth, void *ud)
{
    const srv_server *s = ud;
    const json_t *tok = auth ? json_object_get(auth, AGX_F_TOKEN) : NULL;
    const char *got = json_string_value(tok);
    return srv_token_check(&s->token, got, got ? json_string_length(tok) : 0);
}

static void signal_closed(uv_handle_t *h) { (void)h; }

void srv_drain(srv_server *s, const char *why)
{
    if (s->draining)
        return;
    s->draining = true;
    fprintf(stderr, "agentix-server: %s: draining\n", why);
    srv_cancel_all(s, "agentix-server is shutting down");
    srv_worker_shutdown_all(s);
    if (!srv_workers_running(s))
        srv_reap_all(s); /* else once the last worker has exited (worker_proc.c) */
    agx_sio_server_shutdown(s->sio);
    srv_worker_flush_close(s);
    srv_reap_close(s);
    srv_expiry_close(s, signal_closed);
    srv_heap_close(s, signal_closed);
    /* Closed: a second signal now ends the process the default way. */
    uv_close((uv_handle_t *)&s->sigterm, signal_closed);
    uv_close((uv_handle_t *)&s->sigint, signal_closed);
}

static void on_signal(uv_signal_t *h, int signum)
{
    srv_drain(h->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int start_signals(srv_server *s)
{
    s->sigterm.data = s->sigint.data = s;
    if (uv_signal_init(s->loop, &s->sigterm) || uv_signal_init(s->loop, &s->sigint) ||
        uv_signal_start(&s->sigterm, on_signal, SIGTERM) ||
        uv_signal_start(&s->sigint, on_signal, SIGINT))
        return -1;
    return 0;
}

static int listen_on(srv_server *s)
{
    agx_sio_server_config sc = {
        .host = s->cfg.host,
        .port = s->cfg.port,
        .unix_path = s->cfg.unix_path,
        .version = AGX_VERSION_STRING,
        .ping_interval_ms = s->cfg.ping_interval_ms,
        .ping_timeout_ms = s->cfg.ping_timeout_ms,
        .limits = {.max_payload = s->cfg.max_payload,
                   .queue_limit = s->queue_cap + QUEUE_RESERVE + s->cfg.max_payload,
                   .max_text = MAX_TEXT,
                   .rx_budget = s->cfg.recv_budget},
        .authorize = authorize,
        .on_http = srv_http,
        .handlers = {.on_connect = srv_on_connect,
                     .on_event = srv_on_event,
                     .on_close = srv_on_close,
                     .ud = s},
    };
    agx_error err;
    if (agx_sio_server_start(s->loop, &sc, &s->sio, &err) != 0) {
        fprintf(stderr, "agentix-server: %s\n", err.message);
        return -1;
    }
    int port = agx_sio_server_port(s->sio);
    if (s->cfg.unix_path) {
        fprintf(stderr, "agentix-server %s: listening on unix:%s%s\n", AGX_VERSION_STRING,
                s->cfg.unix_path, srv_token_describe(&s->token));
        return 0;
    }
    if (s->cfg.port_file) {
        char text[16];
        snprintf(text, sizeof text, "%d\n", port);
        if (srv_write_file_atomic(s->cfg.port_file, text) != 0) {
            fprintf(stderr, "agentix-server: cannot write AGENTIX_PORT_FILE '%s': %s\n",
                    s->cfg.port_file, strerror(errno));
            return -1;
        }
    }
    fprintf(stderr, "agentix-server %s: listening on %s:%d%s\n", AGX_VERSION_STRING,
            s->cfg.host, port, srv_token_describe(&s->token));
    return 0;
}

static void teardown(srv_server *s)
{
    agx_sio_server_free(s->sio);
    srv_worker_env_free(s);
    srv_map_free(&s->calls);
    agx_buf_free(&s->scratch);
    srv_config_free(&s->cfg);
    srv_token_wipe(&s->token);
    srv_k8s_self_free(s);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("agentix-server %s\n", AGX_VERSION_STRING);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "agentix-server: unexpected argument '%s'\n%s", argv[1], usage);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a vanished peer shows as EPIPE, not a dead server */
    srv_heap_tune(); /* large items come and go at a high rate (heap.c) */
    /* Same-uid code in the sandbox must not read this process's memory or environment (the
     * token): without CAP_SYS_PTRACE, /proc/<pid>/{mem,environ} are closed to it. */
    prctl(PR_SET_DUMPABLE, 0);
    static srv_server s;
    char msg[512];
    /* The token first: it is taken out of the environment before anything else can copy it. */
    if (srv_token_load(&s.token, msg, sizeof msg) != 0) {
        fprintf(stderr, "agentix-server: %s\n", msg);
        return 2;
    }
    if (srv_config_load(&s.cfg, msg, sizeof msg) != 0) {
        fprintf(stderr, "agentix-server: %s\n", msg);
        srv_config_free(&s.cfg);
        return 2;
    }
    /* Output to one host is capped at twice the largest message: the windows keep well-behaved
     * hosts far below it. Input waiting for the worker is capped the same way. */
    s.queue_cap = 2 * s.cfg.max_payload;
    s.backlog_cap = 2 * s.cfg.max_payload;
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "agentix-server: cannot create the event loop\n");
        srv_config_free(&s.cfg);
        return 1;
    }
    s.loop = &loop;
    if (srv_worker_env_init(&s) != 0 || srv_worker_flush_init(&s) != 0 ||
        start_signals(&s) != 0 || srv_reap_init(&s) != 0 || srv_heap_init(&s) != 0) {
        fprintf(stderr, "agentix-server: cannot set up (out of memory?)\n");
        return 1;
    }
    if (srv_expiry_init(&s, msg, sizeof msg) != 0) {
        fprintf(stderr, "agentix-server: %s\n", msg);
        return 2;
    }
    srv_k8s_self_init(&s); /* a claimed k8s pod deletes itself at expiry (k8s_self.c) */
    /* Every socket needs a descriptor: take all the kernel allows (the accept loop backs off when
     * they run out anyway). */
    long fds = sio_raise_fd_limit();
    if (fds >= 0 && fds < 1024)
        fprintf(stderr, "agentix-server: only %ld file descriptors allowed (RLIMIT_NOFILE); "
                "connections beyond ~%ld wait\n", fds, fds - 64);
    int rc = 0;
    if (listen_on(&s) == 0) {
        if (!srv_worker_get(&s, msg, sizeof msg))
            fprintf(stderr, "agentix-server: %s (calls will retry)\n", msg);
    } else {
        /* Failed at start: close what was opened and let the loop settle. */
        rc = 1;
        if (s.sio)
            agx_sio_server_shutdown(s.sio);
        srv_worker_flush_close(&s);
        srv_reap_close(&s);
        srv_expiry_close(&s, signal_closed);
        srv_heap_close(&s, signal_closed);
        uv_close((uv_handle_t *)&s.sigterm, signal_closed);
        uv_close((uv_handle_t *)&s.sigint, signal_closed);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    teardown(&s);
    if (uv_loop_close(&loop) != 0)
        fprintf(stderr, "agentix-server: some handles were still open at exit\n");
    return rc;
}
