/* main.c — agentix-server, the runtime server a backend starts in each sandbox: it listens for
 * hosts (Socket.IO over websocket, runtime/transport), checks their token, and runs their calls
 * in an agentix-worker subprocess (calls.c, worker_proc.c). Configured by environment variables
 * (config.c, docs/PROTOCOL.md §1). SIGTERM or SIGINT drains it: new calls are refused, calls in
 * flight end with Cancelled, the worker is shut down, connections close, and it exits 0. */
#include "runtime/server/server.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/version.h"

#define QUEUE_RESERVE ((size_t)1 << 20) /* room kept for terminal events past the item cap */

static const char usage[] =
    "usage: agentix-server [--help | --version]\n"
    "\n"
    "The agentix runtime server: serves Socket.IO RPC from agentix hosts and runs the calls in an\n"
    "agentix-worker subprocess. Configured by the environment:\n"
    "  AGENTIX_BIND_HOST         address to listen on (default 0.0.0.0)\n"
    "  AGENTIX_BIND_PORT         TCP port (default 8000; 0 picks a free one)\n"
    "  AGENTIX_PORT_FILE         write the bound port here once listening\n"
    "  AGENTIX_TOKEN             hosts must send this token in their CONNECT\n"
    "  AGENTIX_PING_INTERVAL_MS  heartbeat interval (default 25000)\n"
    "  AGENTIX_PING_TIMEOUT_MS   heartbeat timeout (default 20000)\n"
    "  AGENTIX_MAX_PAYLOAD       largest message / worker frame in bytes (default 67108864)\n"
    "  AGENTIX_WORKER            agentix-worker to run (default: beside this executable)\n"
    "  AGENTIX_MODULE_PATH       module folders for the worker (built-ins are appended)\n"
    "  AGENTIX_WORKER_PID_FILE   write the current worker's pid here whenever one starts\n"
    "  AGENTIX_EXPIRY_MS         end (drain) this long after the start unless extended\n"
    "                            (POST /expiry, the expiry event); unset = never\n"
    "See docs/PROTOCOL.md.\n";

/* The token is compared in time that does not depend on where it differs. */
bool srv_token_ok(const srv_server *s, const char *got, size_t got_len)
{
    const char *want = s->cfg.token;
    if (!want)
        return true;
    if (!got)
        return false;
    size_t n = strlen(want);
    unsigned char diff = got_len != n;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < got_len ? got[i] : 0);
    return diff == 0;
}

static bool authorize(const json_t *auth, void *ud)
{
    const json_t *tok = auth ? json_object_get(auth, AGX_F_TOKEN) : NULL;
    return srv_token_ok(ud, json_is_string(tok) ? json_string_value(tok) : NULL,
                        json_is_string(tok) ? json_string_length(tok) : 0);
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
    agx_sio_server_shutdown(s->sio);
    srv_worker_flush_close(s);
    srv_expiry_close(s, signal_closed);
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
        .version = AGX_VERSION_STRING,
        .ping_interval_ms = s->cfg.ping_interval_ms,
        .ping_timeout_ms = s->cfg.ping_timeout_ms,
        .limits = {.max_payload = s->cfg.max_payload,
                   .queue_limit = s->queue_cap + QUEUE_RESERVE + s->cfg.max_payload},
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
            s->cfg.host, port, s->cfg.token ? " (token required)" : "");
    return 0;
}

static void teardown(srv_server *s)
{
    agx_sio_server_free(s->sio);
    srv_worker_env_free(s);
    srv_map_free(&s->calls);
    agx_buf_free(&s->scratch);
    srv_config_free(&s->cfg);
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
    /* Streams allocate and free ~64 KiB units at a high rate: glibc's default 128 KiB trim
     * threshold gave the heap top back to the kernel and faulted it in again every few items
     * (a third of the server's CPU in a stream). Keep up to 2 MiB of free heap top. */
    mallopt(M_TRIM_THRESHOLD, 2 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    static srv_server s;
    char msg[512];
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
        start_signals(&s) != 0) {
        fprintf(stderr, "agentix-server: cannot set up (out of memory?)\n");
        return 1;
    }
    if (srv_expiry_init(&s, msg, sizeof msg) != 0) {
        fprintf(stderr, "agentix-server: %s\n", msg);
        return 2;
    }
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
        srv_expiry_close(&s, signal_closed);
        uv_close((uv_handle_t *)&s.sigterm, signal_closed);
        uv_close((uv_handle_t *)&s.sigint, signal_closed);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    teardown(&s);
    if (uv_loop_close(&loop) != 0)
        fprintf(stderr, "agentix-server: some handles were still open at exit\n");
    return rc;
}
