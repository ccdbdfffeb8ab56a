/* srvharness.h — drives a real agentix-server process for the server tests: starts it on
 * 127.0.0.1 with an ephemeral port (AGENTIX_PORT_FILE) and the demo test module, and talks to it
 * over the transport's Socket.IO client on a uv loop the test owns, so these tests depend on the
 * transport only, not on the host client library. */
#ifndef AGX_TEST_SRVHARNESS_H
#define AGX_TEST_SRVHARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agentix/value.h"
#include "runtime/transport/sio_client.h"

typedef struct sh_paths {
    const char *server;  /* agentix-server */
    const char *modules; /* folder holding demo.so */
} sh_paths;

typedef struct sh_server {
    pid_t pid;
    int port;
    char dir[256];       /* temp dir: port file, worker pid file, markers */
    char pid_file[300];
} sh_server;

/* Starts the server with AGENTIX_TOKEN=token (NULL = AGENTIX_AUTH=none); extra_env is a NULL-terminated list
 * of "K=V" (may be NULL). valgrind: run it under memcheck. Waits for the port file (30 s). */
void sh_server_start(sh_server *s, const sh_paths *p, const char *token, const char *const *extra_env,
                     bool valgrind);
/* Sends sig and waits up to timeout_ms for the exit; returns the wait status (-1 on timeout, after
 * which the server is SIGKILLed). */
int sh_server_stop(sh_server *s, int sig, int timeout_ms);
/* The current worker's pid (AGENTIX_WORKER_PID_FILE), waiting up to 10 s for it to differ from
 * not_this (0 = any). */
pid_t sh_worker_pid(const sh_server *s, pid_t not_this);
/* VmRSS of a process in KiB, 0 when unknown. */
long sh_rss_kib(pid_t pid);
/* VmRSS, proportional set size (shared library pages divided among their users) and anonymous
 * (private heap/stack) memory of a process, KiB. */
void sh_mem_kib(pid_t pid, long *rss, long *pss, long *anon);

typedef struct sh_event {
    char name[64];
    agx_value *payload; /* the decoded msgpack map (NULL for an event without attachment) */
    struct sh_event *next;
} sh_event;

typedef struct sh_client sh_client;

/* Connects (token NULL = CONNECT without data). NULL when the server refused; *why then holds the
 * close reason. */
sh_client *sh_connect(const sh_server *s, const char *token, agx_error *why);
/* Closes the connection and frees everything. */
void sh_close(sh_client *c);
/* Whether the connection is still open (runs the loop briefly). */
bool sh_connected(sh_client *c);

/* Emits event with a payload given as JSON (converted to msgpack: the payload map). */
void sh_emit_json(sh_client *c, const char *event, const char *json);
/* Emits event with raw attachment bytes (NULL bytes = a plain event without attachment). */
void sh_emit_raw(sh_client *c, const char *event, const void *bytes, size_t len);

/* Waits up to timeout_ms for the next event; NULL on timeout. Free with sh_event_free. */
sh_event *sh_next(sh_client *c, int timeout_ms);
/* The next event, which must be named name and carry call_id (exits the test otherwise). */
sh_event *sh_expect(sh_client *c, const char *name, const char *call_id, int timeout_ms);
/* No event within ms. */
bool sh_quiet(sh_client *c, int ms);
void sh_event_free(sh_event *e);

/* Accessors on an event's payload. */
const agx_value *sh_get(const sh_event *e, const char *key);
const char *sh_error_type(const sh_event *e);
const char *sh_error_message(const sh_event *e);
bool sh_error_cancelled(const sh_event *e);

/* Consumes a stream's items without decoding them, granting credit every window/2 items, until
 * the next other event (returned: normally stream:end) or timeout_ms (NULL). */
sh_event *sh_count_stream(sh_client *c, const char *call_id, uint32_t window, size_t *items,
                          size_t *bytes, int timeout_ms);

/* Runs the client's loop for ms. */
void sh_pump(sh_client *c, int ms);
/* Runs the client's loop until everything emitted has been written to the socket (up to
 * timeout_ms; exits the test when it could not be). */
void sh_flush(sh_client *c, int timeout_ms);

#endif
