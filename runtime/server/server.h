/* server.h — agentix-server's internal parts. The server sits in the middle of the flow
 * host → runtime server → worker: it accepts Socket.IO connections from hosts (runtime/transport),
 * routes their RPC events to one agentix-worker subprocess as worker frames, and relays the
 * worker's answers back as events without decoding their values (docs/PROTOCOL.md §1–§4).
 *
 * Everything runs on one libuv loop thread; nothing here locks.
 *   config.c      environment → srv_config
 *   request.c     host event payloads → srv_req (validated, bounded)
 *   reply.c       events to the host ({call_id, value} with the value relayed as raw bytes)
 *   calls.c       the routing: host events ↔ calls ↔ worker frames, and the budgets
 *   worker_proc.c the worker subprocess: spawn, frames over pipes, death, shutdown, and the
 *                 supervision of cancelled calls (a worker that does not end one is recycled)
 *   token.c       the token: read once, kept out of the sandbox's reach, compared
 *   reap.c        the server as its sandbox's subreaper: orphans reaped, all killed at drain
 *   expiry.c      the server's own expiry (it ends itself), POST /expiry and the other routes
 *   k8s_self.c    in a claimed k8s-pool pod: deletes its own pod when the expiry passes
 *   heap.c        the heap kept warm while bulk items flow, given back when they stop
 *   map.c         the intrusive hash tables the routing uses
 *   main.c        process setup, signals, drain */
#ifndef AGX_SERVER_H
#define AGX_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agentix/error.h"
#include "agentix/value.h"
#include "core/base/mpraw.h"
#include "runtime/transport/sio_server.h"
#include "runtime/wire/frame.h"
#include "runtime/wire/protocol.h"
#include "runtime/wire/ring.h"

#define SRV_CALL_ID_MAX 256          /* bytes of a host's call_id */
#define SRV_TARGET_MAX 512           /* bytes of "module::function" */
#define SRV_CALLS_PER_CONN_MAX 4096  /* calls in flight on one connection */
#define SRV_BOOT_TIMEOUT_MS 60000    /* spawn → `ready`: generous, a host starting 200 at once starves it */
#define SRV_EXIT_GRACE_MS 500        /* pipe EOF → exit status, before failing calls without it */
#define SRV_SHUTDOWN_WAIT_MS 3000    /* `shutdown` frame → SIGTERM (the worker waits 2 s itself) */
#define SRV_TERM_WAIT_MS 1000        /* SIGTERM → SIGKILL */
#define SRV_CANCEL_GRACE_MS 5000     /* cancel → the worker ends the call, or it is recycled */
#define SRV_WORKER_THREADS_MAX 1024  /* calls one worker runs at once (its thread pool) */
#define SRV_QUEUE_WAIT_MS 60000      /* a call waits this long for one of the worker's threads */
#define SRV_QUEUE_MAX 65536          /* calls waiting for one worker's threads */
#define SRV_PIPE_SIZE (1u << 20)     /* F_SETPIPE_SZ for the worker pipes (best effort) */
#define SRV_TOKEN_MAX 4096
#define SRV_UNIX_PATH_MAX 108 /* sun_path, NUL included */

/* ---- configuration (config.c) ---- */

typedef struct srv_config {
    char *host;               /* AGENTIX_BIND_HOST, default 0.0.0.0 */
    int port;                 /* AGENTIX_BIND_PORT, default 8000; 0 = ephemeral */
    char *unix_path;          /* AGENTIX_LISTEN=unix:<path>: listen there instead of TCP */
    char *port_file;          /* AGENTIX_PORT_FILE or NULL */
    uint32_t ping_interval_ms, ping_timeout_ms; /* 0 = transport default */
    size_t max_payload;       /* AGENTIX_MAX_PAYLOAD, default 64 MiB */
    uint32_t cancel_grace_ms; /* AGENTIX_CANCEL_GRACE_MS, default 5000 */
    uint32_t boot_timeout_ms; /* AGENTIX_WORKER_BOOT_MS, default 60000 */
    uint32_t worker_threads;  /* AGENTIX_WORKER_THREADS, default 1024: calls a worker runs at once */
    uint32_t queue_wait_ms;   /* AGENTIX_QUEUE_WAIT_MS, default 60000: a call waits this long for a
                                 thread before it fails with LimitExceeded */
    size_t queue_budget;      /* AGENTIX_QUEUE_BUDGET: bytes queued to all hosts, default 4 M */
    size_t recv_budget;       /* AGENTIX_RECV_BUDGET: bytes of messages received in part, all
                                 hosts together, default 4 M */
    size_t worker_budget;     /* AGENTIX_WORKER_BUDGET: bytes of calls in the worker, default 2 M */
    char *worker_path;        /* AGENTIX_WORKER, default <server dir>/agentix-worker */
    char *module_path;        /* AGENTIX_MODULE_PATH + ":<server dir>/../modules" */
    char *worker_pid_file;    /* AGENTIX_WORKER_PID_FILE or NULL */
} srv_config;

/* 0, or -1 with msg naming the variable and what it must be. */
int srv_config_load(srv_config *c, char *msg, size_t msg_len);
void srv_config_free(srv_config *c);
/* Writes text to path atomically (temp file + rename). 0 or -1 with errno. */
int srv_write_file_atomic(const char *path, const char *text);

/* ---- the token (token.c) ---- */

typedef enum srv_auth_mode {
    SRV_AUTH_TOKEN = 0, /* on: a token from the start (the default; no start without one) */
    SRV_AUTH_CLAIM,     /* AGENTIX_AUTH=claim: set once later; every CONNECT refused until then */
    SRV_AUTH_NONE       /* AGENTIX_AUTH=none: every CONNECT accepted */
} srv_auth_mode;

typedef struct srv_token {
    srv_auth_mode mode;
    bool set;
    size_t len;
    char bytes[SRV_TOKEN_MAX];
    /* Claim mode: the secret a claim must present (AGENTIX_CLAIM_SECRET[_FD]); without one the
     * first claim wins, authenticated by what stands in front of the runtime (a provider's proxy
     * that admits only the sandbox's creator, the Kubernetes API server's pod proxy). */
    bool has_claim_secret;
    size_t claim_len;
    char claim[SRV_TOKEN_MAX];
} srv_token;

/* Reads the token at start: AGENTIX_TOKEN_FD (read to EOF and closed; one trailing newline is
 * dropped), else AGENTIX_TOKEN (overwritten in the environment block and removed); in claim mode
 * the claim secret likewise (AGENTIX_CLAIM_SECRET_FD, AGENTIX_CLAIM_SECRET). 0, or -1 with msg
 * naming the problem: no token, an empty one, both a token and AGENTIX_AUTH=none|claim, a claim
 * secret outside claim mode. */
int srv_token_load(srv_token *t, char *msg, size_t msg_len);
/* Claim mode: the token, set once by the step that authenticates the claim (the k8s warm pool's
 * claim). 0, or -1 with msg when not in claim mode, already set, empty or too long. */
int srv_token_claim(srv_token *t, const char *tok, size_t len, char *msg, size_t msg_len);
/* Whether a CONNECT's token is the one (time independent of where they differ). Always true with
 * AGENTIX_AUTH=none; false while a claim-time token is not set. */
bool srv_token_check(const srv_token *t, const char *got, size_t len);
/* Whether a claim presenting got (NULL = none) may set the token: always without a claim secret.
 * Time independent of where they differ. */
bool srv_token_claim_allowed(const srv_token *t, const char *got, size_t len);
/* " (token required)" etc., for the log line. */
const char *srv_token_describe(const srv_token *t);
void srv_token_wipe(srv_token *t);

/* ---- intrusive hash table (map.c) ---- */

typedef struct srv_map_node {
    struct srv_map_node *next;
    uint64_t hash;
} srv_map_node;

typedef struct srv_map {
    srv_map_node **b;
    size_t nb; /* power of two, 0 before the first insert */
    size_t n;
} srv_map;

/* 0 or AGX_ERR_NO_MEMORY (the table grows as it fills). */
int srv_map_insert(srv_map *m, srv_map_node *node);
void srv_map_remove(srv_map *m, srv_map_node *node);
/* The chain that may hold hash (compare node->hash and the key yourself); NULL when empty. */
srv_map_node *srv_map_chain(const srv_map *m, uint64_t hash);
void srv_map_free(srv_map *m);
uint64_t srv_hash_bytes(const void *data, size_t len);
uint64_t srv_hash_u64(uint64_t v);

#define srv_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- state ---- */

typedef struct srv_server srv_server;
typedef struct srv_conn srv_conn;
typedef struct srv_wproc srv_wproc;

/* One call in flight: known to its connection by call_id and to the server by the worker id.
 * A call whose host got its terminal event while the worker still runs it (cancelled, its host
 * gone) is detached: no connection, on its worker's grace list until the worker ends it. */
typedef struct srv_call {
    srv_map_node by_id;  /* srv_server.calls, hash of id */
    srv_map_node by_cid; /* srv_conn.calls, hash of cid */
    struct srv_call *wp_prev, *wp_next; /* the worker generation's calls */
    struct srv_call *gr_next;           /* the worker's grace list (detached calls, FIFO) */
    srv_conn *conn;      /* NULL once detached */
    srv_wproc *wp;
    uint64_t id;         /* worker id: server-assigned, never reused */
    uint64_t deadline;   /* detached: loop time by which the worker must end it */
    agx_wire_kind kind;
    uint32_t in_credit;  /* bidi: inputs the host may still send */
    bool in_ended;
    size_t held;         /* bytes of it the worker holds (arguments, unconsumed inputs) */
    uint32_t *in_sizes;  /* bidi: sizes of the inputs the function has not consumed, a ring */
    uint8_t in_head, in_count;
    bool queued;         /* waiting in the server for one of its worker's threads */
    bool sent;           /* counted in its worker's ncalls: the worker has (or will have) it */
    struct srv_call *q_next; /* the worker's queue of waiting calls */
    uint64_t queued_at;  /* loop time it started waiting */
    agx_buf qframes;     /* its frames while it waits: sent together when it gets a thread */
    size_t cid_len;
    char cid[];          /* NUL-terminated copy of the host's call_id */
} srv_call;

struct srv_conn {
    srv_server *srv;
    agx_sio_conn *sio;
    srv_map calls; /* by call_id */
    srv_conn *prev, *next;
};

typedef enum srv_wp_state {
    WP_BOOTING = 0, /* spawned, no `ready` yet (frames already queue up on its stdin) */
    WP_READY,
    WP_STOPPING,    /* `shutdown` sent; calls are gone */
    WP_FAILED       /* its calls have been failed; waiting for exit and handle close */
} srv_wp_state;

/* One worker process (one generation). A failed generation lingers until its handles close. */
struct srv_wproc {
    srv_server *srv;
    srv_wp_state state;
    uv_process_t proc;
    uv_poll_t rpoll;      /* readable: frames from the worker's stdout */
    uv_pipe_t wpipe;      /* frames to the worker's stdin */
    uv_timer_t timer;     /* boot timeout, EOF grace, shutdown escalation (see phase) */
    uv_timer_t grace;     /* the oldest detached call's deadline */
    enum { WT_NONE, WT_BOOT, WT_EOF, WT_TERM, WT_KILL } phase;
    uv_write_t wreq;
    int rfd;
    int open_handles;
    bool exited, eof, writing, closing, big_frames;
    int64_t exit_status;
    int term_signal;
    uint64_t pid;
    agx_frame_reader *reader;
    agx_buf wactive;  /* bytes handed to uv_write, untouched until its callback */
    agx_buf wpending; /* frames appended since; flushed after this loop iteration's I/O */
    srv_call *calls;  /* the calls routed to this generation */
    srv_call *grace_head, *grace_tail; /* its detached calls, oldest first */
    srv_call *queue_head, *queue_tail; /* calls waiting for a thread, in arrival order */
    size_t nqueued;
    uv_timer_t qwait; /* the oldest waiting call's deadline */
    size_t ncalls;    /* calls sent to it (detached ones too: they hold a thread) */
    size_t held;      /* bytes its calls hold (srv_call.held) */
    agx_ring ring;    /* its bulk rings (ring.h): out (its items), in (bidi:in items for it); */
    agx_ring in_ring; /* or none (size 0) */
    srv_wproc *next;  /* srv_server.procs */
};

/* What a worker holds against AGENTIX_WORKER_BUDGET: its calls' bytes and its bulk rings. */
static inline size_t srv_worker_holds(const srv_wproc *wp)
{
    return wp->held + wp->ring.size + wp->in_ring.size;
}

struct srv_server {
    uv_loop_t *loop;
    srv_config cfg;
    srv_token token;
    agx_sio_server *sio;
    srv_conn *conns;
    srv_map calls;        /* every call in flight, by worker id */
    uint64_t next_id;
    srv_wproc *current;   /* the worker new calls go to; NULL = spawn on the next call */
    srv_wproc *procs;     /* every generation whose handles are not closed yet */
    uv_check_t flush;     /* writes each worker's pending frames once per loop iteration */
    uv_signal_t sigterm, sigint, sigchld;
    bool draining, reaped_all;
    size_t queued_total;  /* bytes queued to all hosts: recounted once per ms of loop time */
    uint64_t queued_stamp;
    uint64_t saturated_logged; /* loop time of the last "pool saturated" line */
    struct {
        uv_timer_t timer;
        bool open;       /* the timer handle exists */
        bool set;        /* an expiry is in force */
        int64_t at;      /* uv_now() of the expiry */
    } expiry;
    struct {
        uv_timer_t timer;
        bool open;              /* the timer handle exists; it runs only while bulk items move */
        uint64_t moved;         /* bulk item bytes relayed either way, ever */
        uint64_t moved_at_tick; /* moved at the last tick */
    } heap;
    size_t queue_cap;     /* bytes queued to one host at which stream output fails the call */
    size_t backlog_cap;   /* bytes waiting for the worker at which new input fails its call */
    agx_buf scratch;      /* event header / frame encoding, reused */
    char **worker_env;    /* scrubbed environment for the worker */
    struct srv_k8s_self *k8s_self; /* its pod to delete at expiry (k8s_self.c), or NULL */
};

/* ---- worker_proc.c ---- */

/* The worker new calls go to, spawning one when none is running. NULL with msg when it cannot
 * be started. */
srv_wproc *srv_worker_get(srv_server *s, char *msg, size_t msg_len);
/* Where frames for this worker are appended (agx_frame_write_*); NULL once it no longer takes
 * frames (failed or stopping). What is appended is written after this loop iteration's I/O, in
 * one write with everything else appended meanwhile. */
agx_buf *srv_worker_buf(srv_wproc *wp);
/* Bytes appended or being written but not yet taken by the pipe. */
size_t srv_worker_backlog(const srv_wproc *wp);
/* Drain: asks every worker to stop (shutdown frame, then SIGTERM after 3 s, SIGKILL after 1 s). */
void srv_worker_shutdown_all(srv_server *s);
/* A call got its terminal event but the worker still runs it: it must end within the cancel
 * grace, or the worker is recycled — killed (its commands' subreapers then kill their trees),
 * every call on it failed with WorkerExited, the next call served by a fresh worker. */
void srv_worker_watch(srv_wproc *wp, srv_call *call);
/* The worker ended a detached call: off the grace list. */
void srv_worker_unwatch(srv_wproc *wp, srv_call *call);
/* Whether any worker process still runs (drain waits for none). */
bool srv_workers_running(const srv_server *s);
/* (Re)arms the timer of the oldest call waiting for a thread. */
void srv_worker_queue_arm(srv_wproc *wp);
/* Builds s->worker_env from environ. 0 or -1. */
int srv_worker_env_init(srv_server *s);
void srv_worker_env_free(srv_server *s);
int srv_worker_flush_init(srv_server *s);
void srv_worker_flush_close(srv_server *s);

/* ---- calls.c ---- */

void srv_on_event(agx_sio_conn *c, const agx_sio_packet *p, void *ud);
void srv_on_connect(agx_sio_conn *c, void *ud);
void srv_on_close(agx_sio_conn *c, const agx_error *why, void *ud);
/* A frame from the worker (ready and boot_error are handled by worker_proc.c). */
void srv_route_worker_frame(srv_server *s, srv_wproc *wp, const agx_frame *f);
/* Fails every call routed to wp with WorkerExited: message (one terminal event each). */
void srv_fail_worker_calls(srv_server *s, srv_wproc *wp, const char *message);
/* Drain: ends every call with Cancelled (cancel frames to the worker). */
void srv_cancel_all(srv_server *s, const char *message);
/* Ends a call now with error {type, message} to its host and cancels it in the worker: the one
 * way the server stops a call (cancel, host gone, drain; call deadlines use it too). The command
 * the call runs is killed with its whole process tree by agentix.bash's subreaper when the worker
 * cancels it, or when the worker is recycled because it did not. */
void srv_call_abort(srv_call *call, const char *type, const char *message, bool cancelled);
/* Frees a call the worker was running when it went away. */
void srv_call_drop(srv_call *call);
/* Calls that waited longer than AGENTIX_QUEUE_WAIT_MS for a thread of wp end with LimitExceeded
 * (saturation is said, never a silent wait); the timer of wp's queue calls this. */
void srv_queue_expire(srv_wproc *wp);

/* ---- reap.c: the sandbox's processes ---- */

/* Makes the server the subreaper of everything below it and reaps orphans as they exit. */
int srv_reap_init(srv_server *s);
void srv_reap_close(srv_server *s);
/* Drain, once the workers are gone: kills every process left below the server (daemons that
 * earlier calls left running, orphans) and reaps them. */
void srv_reap_all(srv_server *s);

/* ---- main.c ---- */

/* Drains and ends the server as SIGTERM does (why goes to the log and to the calls' errors). */
void srv_drain(srv_server *s, const char *why);

/* ---- heap.c ---- */

/* glibc settings for a server that moves large items (heap.c says why); before anything
 * allocates much. */
void srv_heap_tune(void);
/* The timer that gives the free heap back once bulk traffic stops. -1 when it cannot be made. */
int srv_heap_init(srv_server *s);
/* A bulk item of `bytes` moved through the server (either way). */
void srv_heap_moved(srv_server *s, size_t bytes);
void srv_heap_close(srv_server *s, uv_close_cb done);

/* ---- expiry.c ---- */

/* Reads AGENTIX_EXPIRY_MS and starts the timer (none when unset). 0, or -1 with msg. */
int srv_expiry_init(srv_server *s, char *msg, size_t msg_len);
/* The expiry becomes now + ms (ignored while draining). */
void srv_expiry_extend(srv_server *s, int64_t ms);
/* ms until the expiry, -1 when none is set. */
int64_t srv_expiry_left_ms(srv_server *s);
void srv_expiry_close(srv_server *s, uv_close_cb done);
/* `expiry {call_id, n}` from an authenticated host: extends, answers `expiry:set {call_id, n}`. */
void srv_expiry_on_event(srv_conn *conn, const agx_sio_packet *p);
/* The HTTP routes besides /health (agx_sio_server_config.on_http). */
int srv_http(const agx_sio_http_request *r, const char *method, const char *path, char *body,
             size_t cap, void *ud);

/* ---- k8s_self.c: a claimed pod deletes itself at expiry ---- */

/* Reads the pod's configuration (AGENTIX_K8S_SELF_DELETE=1 and the downward-API, API server and
 * service-account values; docs/K8S.md): enabled when all are valid, else one log line says why
 * not. Call after the token is loaded (claim mode only). */
void srv_k8s_self_init(srv_server *s);
/* When enabled: DELETE of the server's own pod (grace 0, UID precondition), bounded to 5 s, one log
 * line with the answer's status or the failure. The caller drains whatever happened. */
void srv_k8s_self_delete(srv_server *s);
void srv_k8s_self_free(srv_server *s);
/* The status of an HTTP/1.x answer starting at buf (len bytes): 100..599, or -1 when buf does not
 * start with a status line. */
int srv_http_status(const char *buf, size_t len);

/* ---- request.c: host payloads ---- */

typedef struct srv_req {
    const char *cid;      /* not NUL-terminated; NULL when absent */
    size_t cid_len;
    bool cid_ok;          /* present, a str of 1..SRV_CALL_ID_MAX bytes */
    const char *target;
    size_t target_len;
    agx_mp_span shape, args, kwargs, item, n, window; /* len 0 = absent */
} srv_req;

/* Reads the one msgpack-map attachment of an RPC event into r. On error (-1) msg says what is
 * wrong; r->cid / r->cid_ok are still set when the call_id could be read, so the error can be
 * addressed to the call. */
int srv_req_parse(const agx_sio_packet *p, srv_req *r, char *msg, size_t msg_len);
/* Writes a formatted problem into msg (len bytes) and returns -1: every input check reports so. */
int srv_bad(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Checks of a start event (unary, stream, bidi:start, describe): target shape and bounds, args an
 * array, kwargs a map, shape matching, window 1..2^32-1. 0, or -1 with msg. */
int srv_req_check_start(const srv_req *r, agx_wire_kind kind, uint32_t *window, char *msg,
                        size_t msg_len);
/* n of a credit event: 1..UINT32_MAX. */
int srv_req_get_n(const srv_req *r, uint64_t *n, char *msg, size_t msg_len);

/* ---- reply.c: events to the host ---- */

/* `<event> {call_id, <key>: value}` with value relayed as raw msgpack. */
int srv_emit_span(srv_server *s, agx_sio_conn *c, const char *event, const char *cid,
                  size_t cid_len, const char *key, agx_mp_span value);
/* `<event> {call_id, <key>: binary}` with the len bytes at data as the binary (sent from where
 * they lie or copied into the send queue before it returns). */
int srv_emit_bin(srv_server *s, agx_sio_conn *c, const char *event, const char *cid,
                 size_t cid_len, const char *key, const void *data, size_t len);
/* `<event> {call_id}`. */
int srv_emit_cid(srv_server *s, agx_sio_conn *c, const char *event, const char *cid,
                 size_t cid_len);
/* `<event> {call_id, n}`. */
int srv_emit_n(srv_server *s, agx_sio_conn *c, const char *event, const char *cid,
               size_t cid_len, uint64_t n);
/* `<event> {call_id, error:{type, message, detail:nil, cancelled}}`. */
int srv_emit_error(srv_server *s, agx_sio_conn *c, const char *event, const char *cid,
                   size_t cid_len, const char *type, const char *message, bool cancelled);

#endif
