/* engine.h — the I/O engine every runtime connection of the process runs on, and the
 * non-blocking forms a rollout harness needs: connections, calls and sandbox create/delete that
 * report through callbacks, and a completion queue a host's own event loop can drive.
 *
 * Flow: host threads (or one thread with its own loop) → agx_engine: a small fixed set of I/O
 * threads, each one libuv loop multiplexing many agx_client connections (client.h) → the
 * agentix-server of each sandbox. Sandbox create/delete run on the engine's bounded pool of
 * blocking threads (backends keep their synchronous vtable) and report the same way.
 *
 * The default engine: created on first use by any connect that names no engine, with
 * $AGENTIX_ENGINE_THREADS I/O threads (default 1) and $AGENTIX_ENGINE_POOL pool threads
 * (default 16), delivering callbacks on its I/O threads. It lives until the process exits. The
 * simple API (agx_client_connect, agx_client_call, …) runs on it unchanged. A child of fork()
 * gets a default engine of its own on first use; engines, clients and calls made before the fork
 * belong to the parent and must not be used in the child.
 *
 * Callbacks (client.h's connect/unary/stream/bidi forms, and the create/delete forms below) run
 * where the engine's delivery says:
 *   AGX_DELIVER_IO_THREAD — on the I/O thread that owns the connection (create/delete: on the
 *     pool thread that ran the backend). Keep them short; never block in them (blocking client
 *     calls refuse to run there). Callbacks of one connection never run concurrently.
 *   AGX_DELIVER_QUEUE — only inside agx_engine_process, on the thread that calls it: the libcurl
 *     multi / libpq shape. Poll agx_engine_fd for readability from your own loop (epoll, poll,
 *     libuv's uv_poll_t, …) and call agx_engine_process when it is readable. Callbacks of one call
 *     never run concurrently, even when several threads call agx_engine_process.
 *
 * Threading: every function here is safe from any thread. */
#ifndef AGENTIX_ENGINE_H
#define AGENTIX_ENGINE_H

#include <stdint.h>

#include "agentix/deployment.h"
#include "agentix/error.h"
#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_engine agx_engine;

typedef enum agx_engine_delivery {
    AGX_DELIVER_IO_THREAD = 0,
    AGX_DELIVER_QUEUE = 1
} agx_engine_delivery;

typedef struct agx_engine_options {
    uint32_t struct_size;         /* set by agx_engine_options_init */
    unsigned io_threads;          /* I/O threads, default 1 (1..64). One thread serves thousands
                                     of idle connections; more help only with many busy ones. */
    /* Threads that run backend create/delete (started on demand, ended after 10 s idle), default
     * 16. Requests beyond them wait in FIFO order: 1,000 requested creates queue instead of
     * needing 1,000 host threads. Set it at least to the number of creates a backend may run at
     * once (its admission cap on live sandboxes or creates in flight), so the cap, not this
     * pool, is what limits a rollout; more threads than the cap only wait inside the backend. */
    unsigned pool_threads;
    agx_engine_delivery delivery; /* default AGX_DELIVER_IO_THREAD */
    /* https: the CA bundle file / hashed CA folder connections on this engine verify servers
     * against when their client options name none. NULL: $AGENTIX_CA_FILE / $AGENTIX_CA_DIR as
     * they are at each connect, and without those OpenSSL's default store (which honours
     * SSL_CERT_FILE / SSL_CERT_DIR). Verification is never off. */
    const char *ca_file;
    const char *ca_dir;
} agx_engine_options;
AGX_API void agx_engine_options_init(agx_engine_options *opts);

/* Starts an engine (its I/O threads run at once; pool threads on demand). */
AGX_API int agx_engine_new(const agx_engine_options *opts, agx_engine **out, agx_error *err);
/* The process's default engine, created on first use; NULL (with err filled) only when it cannot
 * be started. */
AGX_API agx_engine *agx_engine_default(agx_error *err);
/* Stops the I/O threads and frees the engine. Every client made on it must be freed first (an
 * engine with clients left is not freed; a message says so on stderr). It waits for create/delete
 * requests still running and for freed clients to finish closing (a few seconds at most); with
 * AGX_DELIVER_QUEUE the callbacks still waiting run here, on the calling thread. Not the default
 * engine (a no-op). Not from one of its own callbacks. NULL is a no-op. */
AGX_API void agx_engine_free(agx_engine *e);

/* AGX_DELIVER_QUEUE: a file descriptor that is readable while completions wait to be processed
 * (an eventfd: poll it, never read or close it). -1 for an engine that delivers on its threads. */
AGX_API int agx_engine_fd(const agx_engine *e);
/* Runs waiting completions' callbacks on the calling thread: up to max of them (0 = all that are
 * waiting), first waiting up to timeout_ms for one when none waits (0 = do not wait, < 0 = until
 * one arrives). Returns how many ran (0 when the wait ran out), or AGX_ERR_INVALID_ARGUMENT for an
 * engine that delivers on its threads. Not from inside a callback. */
AGX_API int agx_engine_process(agx_engine *e, int max, int timeout_ms);

/* ---- sandbox create/delete without blocking the caller ---- */

/* Called exactly once. sb (owned by the callback; NULL on failure) is what agx_deployment_create
 * would have returned. */
typedef void (*agx_create_cb)(void *user, int status, agx_sandbox *sb, const agx_error *err);
typedef void (*agx_delete_cb)(void *user, int status, const agx_error *err);

/* Queues agx_deployment_create(dep, cfg) on the engine's pool (e NULL = the default engine);
 * returns at once (cfg is copied). dep must stay alive until the callback has run. Errors
 * returned here are immediate (bad arguments, no memory); everything else comes to cb. */
AGX_API int agx_deployment_create_async(agx_engine *e, agx_deployment *dep, const agx_sandbox_config *cfg,
                                agx_create_cb cb, void *user, agx_error *err);
/* Queues agx_deployment_delete(dep, id) the same way (id is copied). */
AGX_API int agx_deployment_delete_async(agx_engine *e, agx_deployment *dep, const char *id,
                                agx_delete_cb cb, void *user, agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
